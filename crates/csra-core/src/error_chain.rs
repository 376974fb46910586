//! An error and its causes as one line, each cause once.

use std::error::Error;

/// `error: cause: cause…`, leaving out a cause whose text the line already holds: many
/// errors print their source in their own message *and* return it from `source()`, which
/// printed every I/O error twice ("No such file or directory (os error 2): No such file or
/// directory (os error 2)").
pub fn error_chain(error: &(dyn Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut cause = error.source();
    while let Some(next) = cause {
        let text = next.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        cause = next.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer {
        message: String,
        source: std::io::Error,
    }

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.message)
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.source)
        }
    }

    fn not_found() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::NotFound, "no such file")
    }

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let error = Outer {
            message: "reading a.json: no such file".into(),
            source: not_found(),
        };
        assert_eq!(error_chain(&error), "reading a.json: no such file");
    }

    #[test]
    fn a_cause_not_in_the_message_is_appended() {
        let error = Outer {
            message: "reading a.json".into(),
            source: not_found(),
        };
        assert_eq!(error_chain(&error), "reading a.json: no such file");
        let plain = not_found();
        assert_eq!(error_chain(&plain), "no such file");
    }
}
