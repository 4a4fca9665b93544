// Handler attributes go on methods; on another item of the block they are an
// error at the attribute.
struct App;

#[ssh_framework::server]
impl App {
    #[banner]
    const BANNER: &'static str = "hi";
}

fn main() {}
