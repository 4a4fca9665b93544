// A banner handler returning something else than text gets the `IntoBanner`
// sentence at the return type.
struct App;

#[ssh_framework::server]
impl App {
    #[banner]
    async fn banner(&self) -> u32 {
        42
    }
}

fn main() {}
