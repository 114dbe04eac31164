//! Who listens on a TCP port: the socket's inode from `/proc/net/tcp` and `tcp6`, then the
//! process holding that inode among `/proc/*/fd`. Only processes this user may look into can
//! be found; otherwise the answer says how to ask the system.

use std::path::Path;

/// "process 1234 (zhifu serve)", or words saying it could not be found.
pub fn describe(port: u16) -> String {
    let inodes = listening_inodes(port);
    match inodes.iter().find_map(|inode| owner_of(*inode)) {
        Some((pid, command)) => format!("process {pid} ({command})"),
        None => format!("another process (not visible to this user; `ss -ltnp 'sport = :{port}'` as root names it)"),
    }
}

/// Inodes of the sockets listening on `port`, IPv4 and IPv6.
fn listening_inodes(port: u16) -> Vec<u64> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        inodes.extend(parse_listening(&text, port));
    }
    inodes
}

/// The inodes of the lines of a `/proc/net/tcp` table that listen (state `0A`) on `port`.
fn parse_listening(table: &str, port: u16) -> Vec<u64> {
    let wanted = format!("{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit(':').next()?;
            let listening = *fields.get(3)? == "0A";
            (listening && local_port.eq_ignore_ascii_case(&wanted))
                .then(|| fields.get(9)?.parse().ok())
                .flatten()
                .filter(|inode| *inode != 0)
        })
        .collect()
}

/// The process holding socket `inode`, with its command line.
fn owner_of(inode: u64) -> Option<(u32, String)> {
    let target = format!("socket:[{inode}]");
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let holds = fds
            .flatten()
            .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|link| link.as_os_str() == target.as_str()));
        if holds {
            return Some((pid, command_line(&entry.path())));
        }
    }
    None
}

fn command_line(proc_dir: &Path) -> String {
    let raw = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let text: String = String::from_utf8_lossy(&raw)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim().to_string();
    if text.is_empty() {
        std::fs::read_to_string(proc_dir.join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string()
    } else {
        text.chars().take(200).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_lines_are_found_by_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0";
        assert_eq!(
            parse_listening(table, 8080),
            vec![4242],
            "only the listening socket on 8080"
        );
        assert_eq!(parse_listening(table, 80), vec![77]);
        assert!(parse_listening(table, 9090).is_empty());
    }

    #[test]
    fn a_port_this_process_listens_on_names_this_process() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let found = describe(port);
        assert!(
            found.starts_with(&format!("process {} (", std::process::id())),
            "{found}"
        );
    }
}
