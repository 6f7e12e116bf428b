//! Compiles the .proto contract with protox (pure Rust), so no protoc binary is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/bucketfs/v1/raft.proto",
        "proto/bucketfs/v1/meta.proto",
    ];
    for f in files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // Deterministic iteration order for maps (membership lists, logs, tests).
        .btree_map(".")
        .compile_fds(fds)?;
    Ok(())
}
