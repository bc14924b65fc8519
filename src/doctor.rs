//! Health checks shared by `ai-commit doctor` and `:checkhealth ai_commit`.

use std::path::Path;

use serde::Serialize;
use tokio::runtime::Handle;

use crate::config::{Config, Settings};
use crate::git::remote::{local_path, push_target};
use crate::git::Repo;
use crate::model::Client;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub detail: String,
    /// What to do about a warning or a failure, if there is more to say.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub advice: Vec<String>,
}

fn check(name: &'static str, level: Level, detail: impl Into<String>) -> Check {
    Check {
        name,
        level,
        detail: detail.into(),
        advice: Vec::new(),
    }
}

/// Backup targets, when configured: requirements present, commands found.
/// `name` is the work tree's name (a mirror's `{name}`).
fn backup_checks(cfg: &Config, name: &str, out: &mut Vec<Check>) {
    for t in &cfg.backup.targets {
        if t.mirror.is_none() && t.command.is_none() {
            continue;
        }
        let what = crate::backup::label(t, name);
        let missing_command = t.command.as_ref().filter(|c| {
            !(Path::new(&c[0]).is_file()
                || std::env::var_os("PATH")
                    .is_some_and(|ps| std::env::split_paths(&ps).any(|p| p.join(&c[0]).is_file())))
        });
        if let Some(why) = crate::backup::skip_reason(t) {
            // Skipped now either way: a missing command is worth a word,
            // not a failure, until the disk is back.
            let mut detail = format!("{what}: skipped while {why}");
            if let Some(c) = missing_command {
                detail.push_str(&format!(
                    "; {} is not found on PATH either: install it before then",
                    c[0]
                ));
            }
            out.push(check("backup", Level::Warn, detail));
            continue;
        }
        if let Some(c) = missing_command {
            out.push(check(
                "backup",
                Level::Fail,
                format!("{what}: {} is not found on PATH", c[0]),
            ));
            continue;
        }
        out.push(check(
            "backup",
            Level::Ok,
            format!(
                "{what} (at most every {} s)",
                cfg.backup.min_interval.as_secs()
            ),
        ));
    }
}

/// What to do about a compaction that failed or was skipped. (Without git
/// it packs with libgit2, so there is no "install git" to suggest.)
fn what_to_do(log: &Path) -> Vec<String> {
    vec![format!(
        "`ai-commit compact` runs it again and says why it fails (log: {})",
        log.display()
    )]
}

/// Loose bytes that count as "many" for a configuration: 16 times the
/// bytes at which compaction starts (64 MiB by default), at least 1 MiB.
pub fn many_loose_bytes(cfg: &crate::config::Compaction) -> u64 {
    cfg.min_loose_bytes.saturating_mul(16).max(1 << 20)
}

/// The objects' size and the last compaction (issue 11: a journal for life
/// must not grow by a full copy per commit). A repository's objects are a
/// warning when loose objects wait that compaction will not pack: it is
/// off (from [`many_loose_bytes`]), its last run failed or was skipped there
/// (from `min_loose_bytes`), or it is not keeping up (far beyond both: 64
/// times `min_loose_bytes`, at least 64 MiB, as loose objects that nothing
/// refers to are never packed).
fn compaction_checks(repo: &crate::git::Repo, cfg: &Config, out: &mut Vec<Check>) {
    use crate::compact::human;
    let state = crate::compact::load_state(repo);
    let c = &cfg.compaction;
    let many = many_loose_bytes(c);
    let log = crate::job::COMPACTION.log_file();
    for o in crate::status::objects(repo, &cfg.backup) {
        if !o.reachable {
            // The remote check says what to do about an unmounted disk.
            out.push(check(
                "objects",
                Level::Ok,
                format!("{}: {}", o.repo, crate::status::UNREACHABLE),
            ));
            continue;
        }
        let u = &o.usage;
        let mut detail = format!(
            "{}: {} ({} loose object(s), {}; {} pack(s), {})",
            o.repo,
            human(u.total()),
            u.loose_count,
            human(u.loose_bytes),
            u.packs,
            human(u.pack_bytes)
        );
        let last = state
            .results
            .iter()
            .find(|r| crate::status::shown(&r.repo) == o.repo && r.status != "ok");
        let mut advice = Vec::new();
        if !c.enabled && u.loose_bytes >= many {
            detail.push_str(&format!(
                "; {} loose wait and compaction is off",
                human(u.loose_bytes)
            ));
            advice.push("`ai-commit compact` packs them now".to_string());
            advice.push(
                "or turn compaction back on: `enabled = true` under [compaction] in config.toml \
                 (or remove it; on is the default)"
                    .to_string(),
            );
        } else if let Some(r) =
            last.filter(|_| c.enabled && u.loose_bytes >= c.min_loose_bytes.max(1))
        {
            let how = if r.status == "failed" {
                "failed"
            } else {
                "was skipped"
            };
            detail.push_str(&format!(
                "; {} loose wait and the last compaction {how} here: {}",
                human(u.loose_bytes),
                r.detail
            ));
            advice.extend(what_to_do(&log));
        } else if c.enabled && u.loose_bytes >= 64 * c.min_loose_bytes.max(1 << 20) {
            detail.push_str(&format!(
                "; {} loose wait: compaction is not keeping up",
                human(u.loose_bytes)
            ));
            advice.push("`ai-commit compact` packs them now".to_string());
            advice.push(
                "it runs by itself after commits made by ai-commit, with the `ai-commit` CLI on PATH"
                    .to_string(),
            );
            advice.push(
                "objects no commit refers to (staged, then replaced) stay loose: \
                 compaction never drops anything; `git gc` prunes them after two weeks"
                    .to_string(),
            );
        }
        let level = if advice.is_empty() {
            Level::Ok
        } else {
            Level::Warn
        };
        out.push(Check {
            name: "objects",
            level,
            detail,
            advice,
        });
    }
    let last = format!(
        "last compaction: {}",
        crate::status::describe_compaction(state.finished, &state.results)
    );
    let failed = state.results.iter().any(|r| r.status != "ok");
    let detail = if c.enabled {
        format!(
            "on (at most every {}, from {} loose); {last}",
            crate::status::interval(c.min_interval),
            human(c.min_loose_bytes)
        )
    } else {
        format!("off (compaction.enabled = false); {last}")
    };
    out.push(Check {
        name: "compaction",
        level: if failed { Level::Warn } else { Level::Ok },
        detail,
        advice: state
            .results
            .iter()
            .find(|r| r.status != "ok")
            .map(|_| what_to_do(&log))
            .unwrap_or_default(),
    });
}

/// Run every check for the repository around `cwd`.
pub fn run(cwd: &Path, settings: &Settings, rt: &Handle) -> Vec<Check> {
    let mut out = Vec::new();
    let repo = Repo::discover(cwd);
    let root = repo.as_ref().ok().map(|r| r.workdir.clone());
    let cfg = match Config::load(root.as_deref(), settings.clone()) {
        Ok(c) => {
            out.push(check("config", Level::Ok, "configuration is valid"));
            c
        }
        Err(e) => {
            out.push(check("config", Level::Fail, e.to_string()));
            Config::default()
        }
    };

    match Client::new(&cfg) {
        Err(e) => out.push(check("ollama", Level::Fail, e.to_string())),
        Ok(client) => {
            let (version, model) = rt.block_on(async {
                let v = client.version().await;
                let m = match &v {
                    Ok(_) => Some(client.resolve_model(&cfg.model).await),
                    Err(_) => None,
                };
                (v, m)
            });
            match version {
                Ok(v) => out.push(check(
                    "ollama",
                    Level::Ok,
                    format!("Ollama {v} is running at {}", client.host()),
                )),
                Err(e) => out.push(check(
                    "ollama",
                    Level::Warn,
                    format!("{e} (commits still work, with the fallback message)"),
                )),
            }
            match model {
                Some(Ok(name)) => out.push(check("model", Level::Ok, format!("{name} is pulled"))),
                Some(Err(e)) => out.push(check("model", Level::Warn, e.to_string())),
                None => {}
            }
        }
    }

    let repo = match repo {
        Ok(r) => r,
        Err(e) => {
            out.push(check("repository", Level::Warn, e.to_string()));
            return out;
        }
    };
    out.push(check(
        "repository",
        Level::Ok,
        format!(
            "{} (branch {})",
            repo.workdir.display(),
            repo.branch().unwrap_or_else(|| "detached".into())
        ),
    ));
    match repo.check_state() {
        Ok(()) => {}
        Err(e) => out.push(check("state", Level::Warn, e.to_string())),
    }
    match repo.signature() {
        Ok(sig) => out.push(check(
            "identity",
            Level::Ok,
            format!(
                "{} <{}>",
                sig.name().unwrap_or("?"),
                sig.email().unwrap_or("?")
            ),
        )),
        Err(e) => out.push(check("identity", Level::Fail, e.to_string())),
    }
    let name = repo
        .workdir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    backup_checks(&cfg, &name, &mut out);
    compaction_checks(&repo, &cfg, &mut out);
    if !cfg.push {
        out.push(check("remote", Level::Ok, "pushing is off (push = false)"));
        return out;
    }
    match push_target(&repo) {
        Err(e) => out.push(check("remote", Level::Warn, e.to_string())),
        Ok(t) => match local_path(&t.url, &repo.workdir) {
            Some(p) if !p.exists() => out.push(check(
                "remote",
                Level::Warn,
                format!(
                    "{} ({}) does not exist: is its disk mounted? Commits are kept and pushed later",
                    t.remote,
                    p.display()
                ),
            )),
            // A relative URL reads `work/../remote.git`: show where it is.
            Some(p) => match (git2::Repository::open(&p), p.canonicalize().unwrap_or(p)) {
                (Ok(r), p) if r.is_bare() => out.push(check(
                    "remote",
                    Level::Ok,
                    format!("{} → {} (bare, {})", t.branch, p.display(), t.remote_ref),
                )),
                (Ok(_), p) => out.push(check(
                    "remote",
                    Level::Fail,
                    format!("{} has a work tree; use a bare repository", p.display()),
                )),
                (Err(e), p) => out.push(check(
                    "remote",
                    Level::Fail,
                    format!("{} is not a repository: {}", p.display(), e.message()),
                )),
            },
            None => {
                let git = std::process::Command::new("git").arg("--version").output();
                match git {
                    Ok(o) if o.status.success() => out.push(check(
                        "remote",
                        Level::Ok,
                        format!("{} → {} (network remote, pushed with git)", t.branch, t.url),
                    )),
                    _ => out.push(check(
                        "remote",
                        Level::Fail,
                        format!("{} is a network remote and needs `git` installed to push", t.url),
                    )),
                }
            }
        },
    }
    out
}
