//! Processes as `/proc` shows them (Linux): parent, process group, session, state and
//! start time from `/proc/<pid>/stat`, the tree markers a process inherited from
//! `/proc/<pid>/environ`, and the boot a start time belongs to.

use std::fs;

/// One line of the process table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Proc {
    pub pid: i32,
    pub ppid: i32,
    pub pgid: i32,
    pub sid: i32,
    /// Exited, waiting to be reaped (or being torn down): no longer running anything.
    /// A process whose main thread has exited while other threads run on shows as a
    /// zombie in `stat` but is not dead.
    pub dead: bool,
    /// Clock ticks after boot when it started; with the pid, it names one process.
    pub start_ticks: u64,
}

/// The process `pid`, while it exists (a zombie included).
pub(crate) fn stat(pid: i32) -> Option<Proc> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut process = parse_stat(pid, &text)?;
    if !process.dead && is_exited(&text) {
        // Its thread count also holds threads that exited but wait for a tracer to
        // collect them: it runs only if one of its threads does.
        process.dead = !threads(pid).iter().any(|tid| {
            fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
                .is_ok_and(|thread| !is_exited(&thread))
        });
    }
    Some(process)
}

/// Whether a `stat` line's state is a zombie's (or a dead task's): of a thread, that it
/// has exited; of a process, that its main thread has.
fn is_exited(text: &str) -> bool {
    text.rfind(')')
        .and_then(|end| text[end + 1..].trim_start().chars().next())
        .is_some_and(|state| matches!(state, 'Z' | 'X' | 'x'))
}

/// The ids of `pid`'s threads, its main thread included.
fn threads(pid: i32) -> Vec<i32> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|tasks| {
            tasks
                .flatten()
                .filter_map(|task| task.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Parses a `/proc/<pid>/stat` line. The command name is in parentheses and may itself
/// hold spaces or parentheses, so the fields are counted from the last `)`.
fn parse_stat(pid: i32, text: &str) -> Option<Proc> {
    let after_name = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 3 (state), 4 (ppid), 5 (pgrp), 6 (session), 20 (num_threads) and 22
    // (starttime) of proc(5).
    let state = fields.first()?.chars().next()?;
    let threads: u64 = fields.get(17)?.parse().ok()?;
    Some(Proc {
        pid,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        sid: fields.get(3)?.parse().ok()?,
        // The state is the main thread's; a zombie's thread count stays above one while
        // another of its threads runs.
        dead: matches!(state, 'Z' | 'X' | 'x') && threads <= 1,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// Every process now.
pub(crate) fn all() -> Vec<Proc> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat)
        .collect()
}

/// Whether `pid` inherited the tree marker `id` in `var` (a `:`-separated list). A
/// process whose environment cannot be read (another user's, a zombie's) carries none.
/// The `environ` of a process whose main thread has exited cannot be read (`ESRCH`):
/// it is read through another of its threads.
pub(crate) fn carries_marker(pid: i32, var: &str, id: &str) -> bool {
    let environ = match fs::read(format!("/proc/{pid}/environ")) {
        Ok(environ) => environ,
        Err(error) if error.raw_os_error() != Some(nix::errno::Errno::ESRCH as i32) => {
            return false;
        }
        Err(_) => {
            let Some(environ) = threads(pid)
                .into_iter()
                .filter(|tid| *tid != pid)
                .find_map(|tid| fs::read(format!("/proc/{pid}/task/{tid}/environ")).ok())
            else {
                return false;
            };
            environ
        }
    };
    let prefix = format!("{var}=");
    environ
        .split(|b| *b == 0)
        .filter_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .any(|value| {
            value
                .split(|b| *b == b':')
                .any(|part| part == id.as_bytes())
        })
}

/// This boot's id: start times are only comparable within one boot.
pub(crate) fn boot_id() -> Option<String> {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_past_a_command_name_with_spaces_and_parentheses() {
        let line =
            "4242 (a (weird) name) S 17 4242 4240 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 987654 0 0";
        let proc = parse_stat(4242, line).unwrap_or_else(|| panic!("parsed"));
        assert_eq!(
            proc,
            Proc {
                pid: 4242,
                ppid: 17,
                pgid: 4242,
                sid: 4240,
                dead: false,
                start_ticks: 987654,
            }
        );
        let zombie = line.replace(") S ", ") Z ");
        assert!(parse_stat(4242, &zombie).is_some_and(|p| p.dead));
        // A main thread that exited while a second thread runs on: not dead.
        let running_on = zombie.replace(" 20 0 1 0 987654", " 20 0 2 0 987654");
        assert_ne!(running_on, zombie);
        assert!(parse_stat(4242, &running_on).is_some_and(|p| !p.dead));
    }

    #[test]
    fn this_process_is_in_the_table_and_carries_no_marker_it_was_not_given() {
        let me = std::process::id() as i32;
        let table = all();
        assert!(table.iter().any(|p| p.pid == me && !p.dead));
        assert!(!carries_marker(me, "TLAO_PROCESS_TREES_TEST_UNSET", "x"));
    }
}
