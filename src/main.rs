#[cfg(feature = "gui")]
fn main() -> anyhow::Result<()> {
    attnscope::app::run(None)
}

#[cfg(not(feature = "gui"))]
fn main() {}
