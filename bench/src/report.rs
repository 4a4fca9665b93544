//! The markdown report: medians with their spread, CPU per GiB and ratios.

use std::fmt::Write as _;
use std::path::Path;

use crate::client::Logins;
use crate::{Kind, Results, Samples, Target};

fn median(v: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

pub(crate) fn fmt1(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_else(|| "n/a".into())
}

pub(crate) fn fmt2(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.2}")).unwrap_or_else(|| "n/a".into())
}

/// `median (min-max)`, or the median alone for one sample.
fn spread(v: &[f64], digits: usize) -> String {
    let Some(m) = median(v) else { return "n/a".into() };
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if v.len() > 1 { format!("{m:.digits$} ({lo:.digits$}-{hi:.digits$})") } else { format!("{m:.digits$}") }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "n/a".into(),
    }
}

impl Results {
    fn cell(&self, c: usize, t: Target, k: Kind) -> Option<&Samples> {
        self.cells.get(&(c, t, k))
    }

    fn mbps(&self, c: usize, t: Target, k: Kind) -> Option<f64> {
        self.cell(c, t, k).and_then(|s| median(&s.mbps))
    }

    fn cpu(&self, c: usize, t: Target, k: Kind) -> Option<f64> {
        self.cell(c, t, k).and_then(|s| median(&s.cpu))
    }

    /// A cell's text: the spread of `pick`, failures noted, `-` when not measured.
    fn show(&self, c: usize, t: Target, k: Kind, digits: usize, pick: impl Fn(&Samples) -> &Vec<f64>) -> String {
        match self.cell(c, t, k) {
            None => "-".into(),
            Some(s) => {
                let mut text = spread(pick(s), digits);
                if s.failed > 0 {
                    let _ = write!(text, " ({} failed)", s.failed);
                }
                text
            }
        }
    }
}

fn fmt_logins(l: Option<Logins>) -> String {
    match l {
        Some(l) if l.ok > 0 => {
            let mut s = format!("{:.1}", l.rate());
            if l.failed > 0 {
                let _ = write!(s, " ({} failed)", l.failed);
            }
            s
        }
        Some(l) if l.failed > 0 => format!("all {} failed", l.failed),
        _ => "n/a".into(),
    }
}

/// The pairs the issue sets targets for, and a reference pair: (ours, theirs,
/// throughput target, CPU target).
const PAIRS: [(Target, Target, &str, &str); 4] = [
    (Target::MiniSshd, Target::Sshd, ">= 1.30", "<= 0.70"),
    (Target::Framework, Target::Raw, ">= 0.98", "<= 1.05"),
    (Target::RawSpawn, Target::Sshd, "", ""),
    (Target::MiniSshd, Target::RawSpawn, "", ""),
];

/// The whole report.
pub(crate) fn render(r: &Results) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}\n", r.header);
    out.push_str(METHOD);

    out.push_str("\n### Throughput (MB/s, data phase) and setup\n\n");
    out.push_str(
        "MB/s = 10^6 bytes per second over the data phase: median (min-max) of the rounds. \
         Setup: ms from starting `ssh` to the start of the data phase, median over all of the server's exec transfers with that cipher. \
         `-`: not measured (pty rows only for servers that run commands on a pty).\n\n",
    );
    out.push_str("| cipher | server | pipe up | pipe down | pty up | pty down | setup ms |\n|---|---|---:|---:|---:|---:|---:|\n");
    for (c, cipher) in r.ciphers.iter().enumerate() {
        for &t in &r.targets {
            if let Some(Err(e)) = r.probes.get(&(c, t)) {
                let _ = writeln!(out, "| {cipher} | {} | failed: {} | | | | |", t.name(), e.replace('|', "/"));
                continue;
            }
            let setups: Vec<f64> = Kind::EXEC.iter().filter_map(|&k| r.cell(c, t, k)).flat_map(|s| s.setup_ms.iter().copied()).collect();
            let _ = writeln!(
                out,
                "| {cipher} | {} | {} | {} | {} | {} | {} |",
                t.name(),
                r.show(c, t, Kind::PipeUp, 0, |s| &s.mbps),
                r.show(c, t, Kind::PipeDown, 0, |s| &s.mbps),
                r.show(c, t, Kind::PtyUp, 0, |s| &s.mbps),
                r.show(c, t, Kind::PtyDown, 0, |s| &s.mbps),
                fmt1(median(&setups)),
            );
        }
    }

    out.push_str("\n### Server CPU per GiB (s, data phase, whole process tree)\n\n");
    out.push_str(
        "User + system CPU seconds of the server and all its descendants (reaped ones included), \
         per GiB, over the data phase: median (min-max). The last column is the client's \
         (`ssh`) CPU per GiB, pipe up / pipe down, medians.\n\n",
    );
    out.push_str("| cipher | server | pipe up | pipe down | pty up | pty down | client pipe up / down |\n|---|---|---:|---:|---:|---:|---:|\n");
    for (c, cipher) in r.ciphers.iter().enumerate() {
        for &t in &r.targets {
            if !matches!(r.probes.get(&(c, t)), Some(Ok(_))) {
                continue;
            }
            let client = |k| r.cell(c, t, k).and_then(|s| median(&s.client_cpu));
            let _ = writeln!(
                out,
                "| {cipher} | {} | {} | {} | {} | {} | {} / {} |",
                t.name(),
                r.show(c, t, Kind::PipeUp, 2, |s| &s.cpu),
                r.show(c, t, Kind::PipeDown, 2, |s| &s.cpu),
                r.show(c, t, Kind::PtyUp, 2, |s| &s.cpu),
                r.show(c, t, Kind::PtyDown, 2, |s| &s.cpu),
                fmt2(client(Kind::PipeUp)),
                fmt2(client(Kind::PipeDown)),
            );
        }
    }

    out.push_str("\n### Ratios\n\n");
    out.push_str(
        "Each cell: throughput ratio / server CPU-per-GiB ratio, first server over second, from the medians. \
         Higher is better for throughput, lower for CPU. Targets from issue 11: mini-sshd/sshd \
         >= 1.30 throughput and <= 0.70 CPU; framework/raw >= 0.98 and <= 1.05.\n\n",
    );
    out.push_str("| cipher | pair | pipe up | pipe down | pty up | pty down | target |\n|---|---|---:|---:|---:|---:|---|\n");
    for (c, cipher) in r.ciphers.iter().enumerate() {
        for (a, b, tput, cpu) in PAIRS {
            if !r.targets.contains(&a) || !r.targets.contains(&b) {
                continue;
            }
            let cell = |k| {
                if r.cell(c, a, k).is_none() || r.cell(c, b, k).is_none() {
                    return "-".to_owned();
                }
                format!("{} / {}", ratio(r.mbps(c, a, k), r.mbps(c, b, k)), ratio(r.cpu(c, a, k), r.cpu(c, b, k)))
            };
            let target = if tput.is_empty() { "reference".to_owned() } else { format!("{tput} / {cpu}") };
            let _ = writeln!(
                out,
                "| {cipher} | {} / {} | {} | {} | {} | {} | {target} |",
                a.name(),
                b.name(),
                cell(Kind::PipeUp),
                cell(Kind::PipeDown),
                cell(Kind::PtyUp),
                cell(Kind::PtyDown),
            );
        }
    }

    let sftp_targets: Vec<Target> = r.targets.iter().copied().filter(|t| t.sftp()).collect();
    if r.cells.keys().any(|(_, _, k)| matches!(k, Kind::SftpGet | Kind::SftpPut)) {
        out.push_str("\n### SFTP (OpenSSH `sftp -b`: sshd's sftp-server vs mini-sshd's built-in server)\n\n");
        out.push_str(
            "MB/s over the transfer alone (from sftp's echo of `get`/`put` to its echo of the next command), \
             median (min-max); server CPU s/GiB (process tree) over the same interval; setup: ms from starting \
             `sftp` to its echo of `get`/`put` (login and subsystem start), median.\n\n",
        );
        out.push_str("| cipher | server | get MB/s | put MB/s | CPU s/GiB get | CPU s/GiB put | setup ms |\n|---|---|---:|---:|---:|---:|---:|\n");
        for (c, cipher) in r.ciphers.iter().enumerate() {
            for &t in &sftp_targets {
                if r.cell(c, t, Kind::SftpGet).is_none() {
                    continue;
                }
                let setups: Vec<f64> = [Kind::SftpGet, Kind::SftpPut]
                    .iter()
                    .filter_map(|&k| r.cell(c, t, k))
                    .flat_map(|s| s.setup_ms.iter().copied())
                    .collect();
                let _ = writeln!(
                    out,
                    "| {cipher} | {} | {} | {} | {} | {} | {} |",
                    t.name(),
                    r.show(c, t, Kind::SftpGet, 0, |s| &s.mbps),
                    r.show(c, t, Kind::SftpPut, 0, |s| &s.mbps),
                    r.show(c, t, Kind::SftpGet, 2, |s| &s.cpu),
                    r.show(c, t, Kind::SftpPut, 2, |s| &s.cpu),
                    fmt1(median(&setups)),
                );
            }
            let (a, b) = (Target::MiniSshd, Target::Sshd);
            if r.cell(c, a, Kind::SftpGet).is_some() && r.cell(c, b, Kind::SftpGet).is_some() {
                let _ = writeln!(
                    out,
                    "| {cipher} | ratio mini-sshd / sshd (target >= 1.30, CPU <= 0.80) | {} | {} | {} | {} | |",
                    ratio(r.mbps(c, a, Kind::SftpGet), r.mbps(c, b, Kind::SftpGet)),
                    ratio(r.mbps(c, a, Kind::SftpPut), r.mbps(c, b, Kind::SftpPut)),
                    ratio(r.cpu(c, a, Kind::SftpGet), r.cpu(c, b, Kind::SftpGet)),
                    ratio(r.cpu(c, a, Kind::SftpPut), r.cpu(c, b, Kind::SftpPut)),
                );
            }
        }
    }

    if !r.logins.is_empty() {
        out.push_str("\n### Logins (publickey, `exec true`)\n\n");
        out.push_str(
            "Sequential logins per second with the OpenSSH client (`ssh ... true`, one process per login) and \
             with russh's client in the bench process (connect, publickey, exec `true`, exit status, disconnect); \
             server CPU ms per login from the process tree over each loop; parallel: OpenSSH client, many at once. \
             Client default cipher; negotiated algorithms as the OpenSSH client saw them with the first cipher.\n\n",
        );
        out.push_str(
            "| server | ssh logins/s | server CPU ms/login (ssh) | russh logins/s | server CPU ms/login (russh) | parallel logins/s | negotiated (kex, host key, cipher) |\n\
             |---|---:|---:|---:|---:|---:|---|\n",
        );
        for &t in &r.targets {
            let Some(row) = r.logins.get(&t) else { continue };
            let negotiated = r.probes.get(&(0, t)).and_then(|p| p.as_ref().ok()).cloned().unwrap_or_default();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {negotiated} |",
                t.name(),
                fmt_logins(row.openssh),
                fmt2(row.openssh.and_then(|l| l.cpu_ms)),
                fmt_logins(row.russh),
                fmt2(row.russh.and_then(|l| l.cpu_ms)),
                fmt_logins(row.parallel),
            );
        }
        let cpu = |t: Target, russh: bool| {
            r.logins.get(&t).and_then(|row| if russh { row.russh } else { row.openssh }).and_then(|l| l.cpu_ms)
        };
        let _ = writeln!(
            out,
            "\nServer CPU per login, ratios (ssh client / russh client): framework / raw {} / {} (target <= 1.00); \
             mini-sshd / raw {} / {}; mini-sshd / sshd {} / {}.",
            ratio(cpu(Target::Framework, false), cpu(Target::Raw, false)),
            ratio(cpu(Target::Framework, true), cpu(Target::Raw, true)),
            ratio(cpu(Target::MiniSshd, false), cpu(Target::Raw, false)),
            ratio(cpu(Target::MiniSshd, true), cpu(Target::Raw, true)),
            ratio(cpu(Target::MiniSshd, false), cpu(Target::Sshd, false)),
            ratio(cpu(Target::MiniSshd, true), cpu(Target::Sshd, true)),
        );
    }

    out.push_str("\n### Memory per idle session\n\n");
    match &r.idle {
        None => out.push_str("idle-sessions not built (or skipped with --no-idle).\n"),
        Some(Err(e)) => {
            let _ = writeln!(out, "idle-sessions failed: {e}");
        }
        Some(Ok(lines)) => {
            out.push_str(
                "From `idle-sessions` (run as a child process): growth of the server's resident set over the \
                 idle server's, with N authenticated sessions each holding a shell channel, nothing moving \
                 (issue 11's target: 10,000 sessions under 256 MiB).\n\n",
            );
            out.push_str("| server | sessions | RSS growth MiB | KiB per session |\n|---|---:|---:|---:|\n");
            for l in lines {
                let mib = l.rss_kib.parse::<f64>().map(|k| format!("{:.1}", k / 1024.0)).unwrap_or_else(|_| l.rss_kib.clone());
                let _ = writeln!(out, "| {} | {} | {mib} | {} |", l.target, l.sessions, l.per_session_kib);
            }
        }
    }
    out
}

/// How the numbers are taken, printed with every report.
const METHOD: &str = "\
Servers: `sshd` (OpenSSH, own config), `raw` (a hand-written russh server with the framework's russh settings, \
data in-process: `source N` / `sink`), `framework` (an `#[exec]` handler built with ssh_framework, the same \
in-process data), `mini-sshd` (the flagship binary, default settings, spawning `sh -c`), `raw-spawn` (the \
hand-written russh server spawning `sh -c` with pipes or on a pty, a reference). Pipe rows: `ssh host CMD`, `head -c N /dev/zero` \
down and `echo READY; cat > /dev/null` up for the process servers; pty rows: `ssh -tt host 'stty raw -echo; ...'`. \
Every download is checked byte for byte in count, every exit status checked.\n";

/// Replaces the section `## Latest results` of the README (up to the next
/// `## ` heading) with `report`, or appends it.
pub(crate) fn write_readme(path: &Path, report: &str) -> Result<(), String> {
    const HEADING: &str = "## Latest results";
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let section = format!("{HEADING}\n\n{}\n", report.trim_end());
    let new = match text.find(HEADING) {
        Some(start) => {
            let after = start + HEADING.len();
            let end = text[after..].find("\n## ").map(|i| after + i + 1).unwrap_or(text.len());
            let rest = &text[end..];
            format!("{}{section}{}{rest}", &text[..start], if rest.is_empty() { "" } else { "\n" })
        }
        None => format!("{}\n{section}", text.trim_end()),
    };
    std::fs::write(path, new).map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn readme_section_is_replaced_and_the_rest_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("README.md");
        std::fs::write(&path, "# bench\n\nintro\n\n## Latest results\n\nold\n\n## Findings\n\nkept\n").unwrap();
        super::write_readme(&path, "new table\n").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "# bench\n\nintro\n\n## Latest results\n\nnew table\n\n## Findings\n\nkept\n");
        super::write_readme(&path, "newer\n").unwrap();
        assert!(std::fs::read_to_string(&path).unwrap().contains("## Latest results\n\nnewer\n\n## Findings"));
    }

    #[test]
    fn spread_shows_median_min_and_max() {
        assert_eq!(super::spread(&[3.0, 1.0, 2.0], 1), "2.0 (1.0-3.0)");
        assert_eq!(super::spread(&[5.0], 0), "5");
        assert_eq!(super::spread(&[], 0), "n/a");
    }
}
