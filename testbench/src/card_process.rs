//! A card process (`offcard card`) started by a test or a benchmark: it
//! waits until the process listens, and on drop kills it and removes its
//! socket and log, also when the caller panics (then the log is printed).

use offcard_driver::{Card, VfioUserTransport};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct CardProcess {
    pub child: Child,
    pub socket: PathBuf,
}

impl CardProcess {
    /// `exe card --socket <fresh path> extra...` (`exe` is the `offcard` binary).
    pub fn start(exe: &Path, tag: &str, extra: &[&str]) -> CardProcess {
        let socket = offcard_sim::card_process::temp_socket(tag);
        let mut cmd = Command::new(exe);
        cmd.args(["card", "--socket"]).arg(&socket).args(extra);
        CardProcess::spawn(cmd, socket)
    }

    /// Run `cmd`, which serves a card on `socket` (for example `offcard card`
    /// inside `ip netns exec`), its stderr to `<socket>.log`; wait until it
    /// listens (60 s).
    pub fn spawn(mut cmd: Command, socket: PathBuf) -> CardProcess {
        let log = std::fs::File::create(socket.with_extension("log")).expect("card process log");
        let child = cmd.stdout(Stdio::null()).stderr(log).spawn().expect("start the card process");
        let mut p = CardProcess { child, socket };
        let t0 = Instant::now();
        while !p.socket.exists() {
            if let Some(st) = p.child.try_wait().unwrap() {
                panic!("card process exited ({st}) before listening: {}", p.log());
            }
            assert!(t0.elapsed() < Duration::from_secs(60), "card process did not listen");
            std::thread::sleep(Duration::from_millis(10));
        }
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.socket.with_extension("log")).unwrap_or_default()
    }

    pub fn connect(&self) -> VfioUserTransport {
        VfioUserTransport::connect(&self.socket).expect("connect to the card process")
    }

    /// Attach as soon as the card process is free again (it resets the
    /// card between clients), within 30 s.
    pub fn card_when_free(&self, why: &str) -> Card<VfioUserTransport> {
        let t0 = Instant::now();
        loop {
            match VfioUserTransport::connect(&self.socket).map(Card::open) {
                Ok(Ok(c)) => return c,
                _ if t0.elapsed() < Duration::from_secs(30) => std::thread::sleep(Duration::from_millis(100)),
                Ok(Err(e)) => panic!("{why}: {e}"),
                Err(e) => panic!("{why}: {e}"),
            }
        }
    }
}

impl Drop for CardProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
        if std::thread::panicking() {
            eprintln!("card process log ({}):\n{}", self.socket.with_extension("log").display(), self.log());
        }
        let _ = std::fs::remove_file(self.socket.with_extension("log"));
    }
}
