//! Sets the linker flags a Node addon needs (N-API symbols resolved by the
//! `node` process at load time).

fn main() {
    napi_build::setup();
}
