//! A tmux server of our own (`-L`), without the user's config
//! (`-f /dev/null`), running a shell script in a 100×30 window named `csm`;
//! killed when dropped, whatever happened. Shared by the dashboard's
//! end-to-end tests (`#[path = "support/tmux.rs"] mod tmux;`).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A new server whose window runs `sh script`.
    pub fn start(script: &Path) -> Tmux {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.subsec_nanos());
        let tmux = Tmux {
            socket: format!("csm-test-{}-{nanos}", std::process::id()),
        };
        tmux.ok(&[
            "new-session",
            "-d",
            "-s",
            "csm",
            "-x",
            "100",
            "-y",
            "30",
            "env",
            "PS1=$ ",
            "sh",
        ]);
        tmux.ok(&[
            "send-keys",
            "-t",
            "csm",
            &format!("sh '{}'", script.display()),
            "Enter",
        ]);
        tmux
    }

    pub fn run(&self, args: &[&str]) -> Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn pane(&self) -> String {
        self.ok(&["capture-pane", "-p", "-t", "csm"])
    }

    /// A tmux format (`#{window_bell_flag}`…) of the window.
    #[allow(dead_code)]
    pub fn format(&self, f: &str) -> String {
        self.ok(&["display-message", "-p", "-t", "csm", f])
            .trim()
            .to_string()
    }

    /// Polls the pane until `pred` holds; bounded, no fixed sleeps.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let pane = self.pane();
            if pred(&pane) {
                return pane;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; pane:\n{pane}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}
