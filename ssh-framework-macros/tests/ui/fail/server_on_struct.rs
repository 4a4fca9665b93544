// `#[server]` goes on an impl block; on anything else it is an error at the
// item, and the item is kept (so `App` below still exists).
#[ssh_framework::server]
struct App;

fn main() {
    let _app = App;
}
