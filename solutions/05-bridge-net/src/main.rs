fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let pid: i32 = args[1].parse()?;
    let mut nl = step05::netlink::Netlink::open()?;
    nl.add_bridge("mbx0")?;
    let br = nl.index("mbx0")?;
    nl.add_address(br, "10.88.0.1".parse()?, 16)?;
    nl.set_up(br, None)?;
    nl.add_veth("veth-test", "eth-tmp", pid)?;
    let v = nl.index("veth-test")?;
    nl.set_up(v, Some(br))?;
    let mut inside = step05::netlink::Netlink::open_in(pid)?;
    let e = inside.index("eth-tmp")?;
    inside.add_address(e, "10.88.0.2".parse()?, 16)?;
    inside.set_up(e, None)?;
    let lo = inside.index("lo")?;
    inside.set_up(lo, None)?;
    inside.add_default_route(e, "10.88.0.1".parse()?)?;
    println!("mac {}", inside.mac("eth-tmp")?);
    Ok(())
}
