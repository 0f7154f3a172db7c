fn main() {
    let p = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let f = mptcp_backport::synth::generate(&p, &mptcp_backport::synth::Spec::test()).unwrap();
    println!("{f:#?}");
}
