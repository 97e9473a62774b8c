//! The command line of both modes: `--key value` or `--key=value`, one option at a time.

/// An option as given: its name and, for `--key=value`, its value.
pub struct Opt {
    /// The argument as written, for "unknown argument".
    pub arg: String,
    pub key: String,
    inline: Option<String>,
}

/// The options of `args`, read one at a time.
pub struct Options<I> {
    args: I,
}

impl<I: Iterator<Item = String>> Options<I> {
    pub fn new(args: I) -> Self {
        Options { args }
    }

    /// The next option; `Err` with an empty message (print the usage) for `-h` or `--help`.
    pub fn next_opt(&mut self) -> Option<Result<Opt, String>> {
        let arg = self.args.next()?;
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_owned(), Some(v.to_owned())),
            _ => (arg.clone(), None),
        };
        if key == "-h" || key == "--help" {
            return Some(Err(String::new()));
        }
        Some(Ok(Opt { arg, key, inline }))
    }

    /// `opt`'s value: the one given inline, else the next argument.
    pub fn value(&mut self, opt: &Opt) -> Result<String, String> {
        opt.inline
            .clone()
            .or_else(|| self.args.next())
            .ok_or_else(|| format!("{} needs a value", opt.key))
    }
}
