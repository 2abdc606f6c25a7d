//! What the model sees, sans-IO: the room's files (bounded, most relevant first), the last
//! run's output and exit code, and the recent conversation, put into chat-completion
//! messages.

use mesh_protocol::ghost::GhostSelection;

use crate::desk::Mode;
use crate::edits::{SUGGEST_INSTRUCTIONS, WRITE_INSTRUCTIONS};
use crate::provider::ChatMessage;

/// How many characters of file text go to the model at most: about 12k tokens, which fits
/// the context of small local models with room for the answer.
pub const MAX_FILE_CHARS: usize = 48_000;

/// How many characters of the last run's output go to the model: its end, where the error is.
pub const MAX_RUN_OUTPUT_CHARS: usize = 8_000;

/// How many recent chat messages go to the model: enough to follow a conversation, few
/// enough not to crowd out the code.
pub const MAX_CHAT_MESSAGES: usize = 20;

/// The last run of the room, as the ghost saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastRun {
    /// The entry file.
    pub path: String,
    /// stdout and stderr as they arrived.
    pub output: String,
    /// The exit code, when it ended with one.
    pub code: Option<i64>,
    /// The limit that ended it, if one did.
    pub limit: Option<String>,
}

/// Everything a request is answered from.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The room's files: path and text.
    pub files: Vec<(String, String)>,
    /// Recent chat: author and text, oldest first.
    pub chat: Vec<(String, String)>,
    /// The last run, if the ghost saw one.
    pub last_run: Option<LastRun>,
}

const SYSTEM: &str = "You are ghost, an assistant inside mesh, a room where several people edit \
one project together. Answer the person who asked, briefly and concretely, in plain text for a \
chat panel. Refer to files by their paths. The room's files, its last run and the recent chat \
follow.";

/// Orders files by relevance to `prompt`: files the request names come first, then files
/// the last run's output names (a traceback points at the failing file), then the rest by
/// path.
pub fn rank_files<'a>(files: &'a [(String, String)], prompt: &str, run: Option<&LastRun>) -> Vec<&'a (String, String)> {
    let score = |path: &str| -> u8 {
        let base = path.rsplit('/').next().unwrap_or(path);
        if prompt.contains(path) || prompt.contains(base) {
            0
        } else if run.is_some_and(|r| r.path == path || r.output.contains(base)) {
            1
        } else {
            2
        }
    };
    let mut ranked: Vec<_> = files.iter().collect();
    ranked.sort_by(|a, b| score(&a.0).cmp(&score(&b.0)).then_with(|| a.0.cmp(&b.0)));
    ranked
}

fn tail(text: &str, max_chars: usize) -> &str {
    let count = text.chars().count();
    if count <= max_chars {
        return text;
    }
    let skip = text.char_indices().nth(count - max_chars).map_or(0, |(i, _)| i);
    &text[skip..]
}

/// The request's text with the asker's selection in front of it, so the model knows which
/// lines "this" means (and the file ranks first, as it is named).
pub fn with_selection(prompt: &str, selection: Option<&GhostSelection>) -> String {
    match selection {
        None => prompt.to_string(),
        Some(s) if s.text.is_empty() => {
            format!("(about lines {}-{} of {})\n{prompt}", s.start_line, s.end_line, s.path)
        }
        Some(s) => format!(
            "(about lines {}-{} of {}, selected:)\n```\n{}\n```\n{prompt}",
            s.start_line,
            s.end_line,
            s.path,
            s.text.trim_end_matches('\n')
        ),
    }
}

/// The messages for the provider.
pub fn build(ctx: &Context, asker: &str, prompt: &str, mode: Mode) -> Vec<ChatMessage> {
    let mut room = String::new();
    let mut budget = MAX_FILE_CHARS;
    let mut left_out = Vec::new();
    for (path, text) in rank_files(&ctx.files, prompt, ctx.last_run.as_ref()) {
        let len = text.chars().count();
        if len <= budget {
            budget -= len;
            room.push_str(&format!("=== file {path} ===\n{text}\n"));
        } else {
            left_out.push(path.as_str());
        }
    }
    if !left_out.is_empty() {
        room.push_str(&format!("(files left out for size: {})\n", left_out.join(", ")));
    }
    if let Some(run) = &ctx.last_run {
        let code = run.code.map_or("none".to_string(), |c| c.to_string());
        room.push_str(&format!("=== last run of {} (exit code {code}", run.path));
        if let Some(limit) = &run.limit {
            room.push_str(&format!(", stopped by the {limit} limit"));
        }
        room.push_str(&format!(") ===\n{}\n", tail(&run.output, MAX_RUN_OUTPUT_CHARS)));
    }
    let recent = ctx.chat.len().saturating_sub(MAX_CHAT_MESSAGES);
    if recent < ctx.chat.len() {
        room.push_str("=== recent chat ===\n");
        for (author, text) in &ctx.chat[recent..] {
            room.push_str(&format!("{author}: {text}\n"));
        }
    }
    vec![
        ChatMessage {
            role: "system",
            content: match mode {
                Mode::Explain => format!("{SYSTEM}\n\n{room}"),
                Mode::Suggest => format!("{SYSTEM}\n{SUGGEST_INSTRUCTIONS}\n\n{room}"),
                Mode::Write => format!("{SYSTEM}\n{WRITE_INSTRUCTIONS}\n\n{room}"),
            },
        },
        ChatMessage {
            role: "user",
            content: format!("{asker} asks: {prompt}"),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_goes_before_the_request_and_names_its_file() {
        let sel = GhostSelection {
            path: "src/calc.py".into(),
            start_line: 3,
            end_line: 4,
            text: "def add(a, b):\n    return a - b\n".into(),
        };
        assert_eq!(
            with_selection("why?", Some(&sel)),
            "(about lines 3-4 of src/calc.py, selected:)\n```\ndef add(a, b):\n    return a - b\n```\nwhy?"
        );
        assert_eq!(with_selection("why?", None), "why?");
        let files = vec![
            ("a.py".to_string(), String::new()),
            ("src/calc.py".to_string(), String::new()),
        ];
        let prompt = with_selection("why?", Some(&sel));
        assert_eq!(rank_files(&files, &prompt, None)[0].0, "src/calc.py");
    }

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(p, t)| (p.to_string(), t.to_string())).collect()
    }

    #[test]
    fn files_the_request_names_come_first_then_the_failing_one() {
        let f = files(&[("a.py", "1"), ("lib/b.py", "2"), ("c.py", "3")]);
        let run = LastRun {
            path: "a.py".into(),
            output: "File \"c.py\", line 1".into(),
            code: Some(1),
            limit: None,
        };
        let ranked: Vec<&str> = rank_files(&f, "look at b.py", Some(&run))
            .iter()
            .map(|(p, _)| p.as_str())
            .collect();
        assert_eq!(ranked, vec!["lib/b.py", "a.py", "c.py"]);
    }

    #[test]
    fn files_over_the_budget_are_named_not_sent() {
        let big = "x".repeat(MAX_FILE_CHARS);
        let ctx = Context {
            files: vec![("small.py".into(), "print(1)".into()), ("big.py".into(), big)],
            ..Context::default()
        };
        let msgs = build(&ctx, "ada", "small.py?", Mode::Explain);
        assert!(msgs[0].content.contains("=== file small.py ===\nprint(1)"));
        assert!(msgs[0].content.contains("files left out for size: big.py"));
        assert!(msgs[0].content.chars().count() < MAX_FILE_CHARS + 2000);
    }

    #[test]
    fn the_last_run_is_shown_with_its_exit_code_and_tail() {
        let output = format!("{}THE END", "y".repeat(MAX_RUN_OUTPUT_CHARS * 2));
        let ctx = Context {
            last_run: Some(LastRun {
                path: "main.py".into(),
                output,
                code: Some(3),
                limit: None,
            }),
            ..Context::default()
        };
        let sys = &build(&ctx, "ada", "fix it", Mode::Write)[0].content;
        assert!(sys.contains("last run of main.py (exit code 3)"));
        assert!(sys.contains("THE END"));
        assert!(sys.len() < MAX_RUN_OUTPUT_CHARS + 2000);
    }

    #[test]
    fn only_the_recent_chat_is_sent_and_the_asker_is_named() {
        let ctx = Context {
            chat: (0..50).map(|i| ("bea".to_string(), format!("m{i}"))).collect(),
            ..Context::default()
        };
        let msgs = build(&ctx, "ada", "q", Mode::Explain);
        assert!(msgs[0].content.contains("bea: m49"));
        assert!(!msgs[0].content.contains("bea: m29\n"));
        assert_eq!(msgs[1].content, "ada asks: q");
    }
}
