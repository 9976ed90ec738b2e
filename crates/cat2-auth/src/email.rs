//! E-mail address validation as pydantic's `EmailStr` does it for fastapi-users' `UserCreate`.
//!
//! pydantic first rejects inputs over 2048 characters or with CR/LF, unwraps a
//! `Display Name <addr>` form, strips whitespace, then calls email-validator 2 with
//! `check_deliverability=False` (no DNS). This module re-implements that pipeline from its
//! observed behaviour: the same addresses are accepted, the normalised form is the one stored
//! (domain lower-cased, Unicode NFC, well-known role mailboxes like `Info@` lower-cased), and
//! rejections carry email-validator's reason texts. ASCII addresses follow the reference
//! exactly, reason texts included. For internationalised domains the UTS-46/IDNA steps use the
//! `idna` crate, whose error texts (and a few exotic IDNA 2008 corner cases) differ from
//! Python's `idna` package; names of invisible non-ASCII characters in messages are given as
//! `U+XXXX` except for a small table.

use icu_normalizer::uts46::Uts46MapperBorrowed;
use icu_normalizer::{ComposingNormalizerBorrowed, DecomposingNormalizerBorrowed};
use icu_properties::{props::GeneralCategory, CodePointMapData};

use crate::{Error, Result};

/// Validates an e-mail address like pydantic's `EmailStr` and returns the normalised address
/// that the reference stores. Errors are [`Error::InvalidEmail`].
///
/// ```
/// assert_eq!(cat2_auth::validate_email(" Bob@Example.COM ").unwrap(), "Bob@example.com");
/// assert!(cat2_auth::validate_email("notanemail").is_err());
/// ```
pub fn validate_email(input: &str) -> Result<String> {
    pydantic_validate(input).map_err(|reason| Error::InvalidEmail {
        input: input.to_owned(),
        reason,
    })
}

/// pydantic's message for a `UserCreate` whose `email` failed, as `str(ValidationError)`.
pub(crate) fn pydantic_message(input: &str, reason: &str) -> String {
    format!(
        "1 validation error for UserCreate\nemail\n  value is not a valid email address: {reason} \
         [type=value_error, input_value={}, input_type=str]",
        truncate_repr(&py_repr(input))
    )
}

type Reason = String;

/// Stands in for the detail that Python's `idna` package puts in parentheses (the `idna`
/// crate does not say which code point or rule failed).
const IDNA_DETAIL: &str = "a code point or label is not allowed by IDNA";

const MAX_INPUT_CHARS: usize = 2048;
const EMAIL_MAX_LENGTH: usize = 254;
const DOMAIN_MAX_LENGTH: usize = 253;
const DNS_LABEL_LENGTH_LIMIT: usize = 63;
const CASE_INSENSITIVE_MAILBOX_NAMES: &[&str] = &[
    "info",
    "marketing",
    "sales",
    "support",
    "abuse",
    "noc",
    "security",
    "postmaster",
    "hostmaster",
    "usenet",
    "news",
    "webmaster",
    "www",
    "uucp",
    "ftp",
];
const SPECIAL_USE_DOMAIN_NAMES: &[&str] =
    &["arpa", "invalid", "local", "localhost", "onion", "test"];

fn pydantic_validate(value: &str) -> Result<String, Reason> {
    if value.chars().count() > MAX_INPUT_CHARS {
        return Err(format!(
            "Length must not exceed {MAX_INPUT_CHARS} characters"
        ));
    }
    if value.contains(['\r', '\n']) {
        return Err("Carriage return and line feed characters are not allowed".into());
    }
    let value = pretty_address(value).unwrap_or(value);
    email_validator(py_strip(value))
}

/// pydantic's `pretty_email_regex`, `\s*(?:NAME|"QUOTED")?\s*<(.+)>\s*`, as a full match:
/// returns the part inside the angle brackets.
fn pretty_address(s: &str) -> Option<&str> {
    let is_name_char = |c: char| is_py_word(c) || ".!#$%&'*+-/=?^_`{|}~".contains(c);
    let start = s.len() - s.trim_start_matches(py_isspace).len();
    let rest = &s[start..];
    // Alternative 1: an unquoted name of word-ish runs separated by whitespace.
    let mut names = false;
    let mut pos = 0;
    for (i, c) in rest.char_indices() {
        pos = i;
        if is_name_char(c) {
            names = true;
        } else if !py_isspace(c) {
            break;
        }
        pos = i + c.len_utf8();
    }
    if names {
        if let Some(addr) = rest[pos..].strip_prefix('<').and_then(angle_tail) {
            return Some(addr);
        }
    }
    // Alternative 2: a quoted name; the greedy group prefers the last usable closing quote.
    if let Some(q) = rest.strip_prefix('"') {
        let closes: Vec<usize> = q
            .char_indices()
            .filter(|&(i, c)| c == '"' && i > 0)
            .map(|(i, _)| i)
            .collect();
        for &j in closes.iter().rev() {
            let after = q[j + 1..].trim_start_matches(py_isspace);
            if let Some(addr) = after.strip_prefix('<').and_then(angle_tail) {
                return Some(addr);
            }
        }
    }
    // Alternative 3: no name.
    rest.strip_prefix('<').and_then(angle_tail)
}

/// Matches `(.+)>\s*` at the end of a string (CR/LF are already excluded).
fn angle_tail(s: &str) -> Option<&str> {
    let inner = s.trim_end_matches(py_isspace).strip_suffix('>')?;
    (!inner.is_empty()).then_some(inner)
}

struct Split {
    display_name: Option<String>,
    local: String,
    domain: String,
    quoted: bool,
}

/// email-validator's `validate_email` with pydantic's options; returns the normalised address.
fn email_validator(email: &str) -> Result<String, Reason> {
    let Split {
        display_name,
        local,
        domain,
        quoted,
    } = split_email(email)?;
    let original = if quoted {
        format!("\"{local}\"@{domain}")
    } else {
        format!("{local}@{domain}")
    };

    let mut info = validate_local_part(&local, quoted)?;
    let nfc = nfc(&info.local);
    if nfc != info.local {
        validate_local_part(&nfc, quoted)
            .map_err(|e| format!("After Unicode normalization: {e}"))?;
        info.local = nfc;
    }
    if quoted {
        return Err("Quoting the part before the @-sign is not allowed here.".into());
    }
    if let Some(ascii) = &info.ascii_local {
        let lower = ascii.to_lowercase();
        if CASE_INSENSITIVE_MAILBOX_NAMES.contains(&lower.as_str()) {
            info.ascii_local = Some(lower);
            info.local = info.local.to_lowercase();
        }
    }

    if domain.is_empty() {
        return Err("There must be something after the @-sign.".into());
    }
    let (domain_i18n, ascii_domain) =
        if let Some(lit) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
            validate_domain_literal(lit)?;
            return Err("A bracketed IP address after the @-sign is not allowed here.".into());
        } else {
            validate_domain_name(&domain)?
        };

    let normalized = format!("{}@{domain_i18n}", info.local);
    let ascii_form = format!(
        "{}@{ascii_domain}",
        info.ascii_local.as_deref().unwrap_or(&info.local)
    );
    validate_length(&original, &normalized, &ascii_form)?;
    if display_name.is_some() {
        return Err(
            "A display name and angle brackets around the email address are not permitted here."
                .into(),
        );
    }
    Ok(normalized)
}

fn split_email(email: &str) -> Result<Split, Reason> {
    let (left, right) = split_at_unquoted_special(email, &['@', '<'])?;
    let (display_name, local, domain) = if right.starts_with('<') {
        let (name, name_quoted) = unquote(left.trim_end_matches(py_isspace))?;
        if !name_quoted {
            let bad = displays(
                name.chars()
                    .filter(|&c| c == '.' || (!is_atext(c) && c != ' ')),
            );
            if !bad.is_empty() {
                return Err(format!(
                    "The display name contains invalid characters when not quoted: {bad}."
                ));
            }
        }
        check_unsafe_chars(&name, true)?;
        if !right.contains('>') {
            return Err("An open angle bracket at the start of the email address has to be followed by a close \
                        angle bracket at the end."
                .into());
        }
        let right = right.trim_end_matches(' ');
        if !right.ends_with('>') {
            return Err("There can't be anything after the email address.".into());
        }
        let addr_spec = right[1..].trim_end_matches('>');
        let (local, domain) = split_at_unquoted_special(addr_spec, &['@'])?;
        (Some(name), local, domain)
    } else {
        (None, left, right)
    };
    let domain = domain.strip_prefix('@').unwrap_or(domain);
    let (local, quoted) = unquote(local)?;
    Ok(Split {
        display_name,
        local,
        domain: domain.to_owned(),
        quoted,
    })
}

/// Splits before the first `specials` character outside quotes that no following combining
/// character modifies.
fn split_at_unquoted_special<'a>(
    text: &'a str,
    specials: &[char],
) -> Result<(&'a str, &'a str), Reason> {
    let (mut inside_quote, mut escaped) = (false, false);
    let mut split = None;
    for (i, c) in text.char_indices() {
        if changes_under_nfc(&text[i..], c) {
            continue;
        }
        if inside_quote {
            if c == '\\' && !escaped {
                escaped = true;
            } else if c == '"' && !escaped {
                inside_quote = false;
                escaped = false;
            } else {
                escaped = false;
            }
        } else if c == '"' {
            inside_quote = true;
        } else if specials.contains(&c) {
            split = Some(i);
            break;
        }
    }
    match split {
        Some(i) => Ok((&text[..i], &text[i..])),
        None if text.contains('\u{FF20}') => Err(
            "The email address has the \"full-width\" at-sign (@) character instead of a regular at-sign."
                .into(),
        ),
        None if text.contains('\u{FE6B}') => {
            Err("The email address has the \"small commercial at\" character instead of a regular at-sign.".into())
        }
        None => Err("An email address must have an @-sign.".into()),
    }
}

/// `unicodedata.normalize("NFC", text)[0] != c` where `text` starts with `c`.
fn changes_under_nfc(text: &str, c: char) -> bool {
    let mut chars = text.chars();
    chars.next();
    let next_is_ascii = chars.clone().next().is_none_or(|n| n.is_ascii());
    if c.is_ascii() && next_is_ascii {
        return false;
    }
    // Composition only involves the run of non-ASCII characters after `c`.
    let end = text.len()
        - chars
            .as_str()
            .trim_start_matches(|n: char| !n.is_ascii())
            .len();
    !nfc(&text[..end]).starts_with(c)
}

/// Removes surrounding quotes and backslash escapes; says whether the text was quoted.
fn unquote(text: &str) -> Result<(String, bool), Reason> {
    let (mut quoted, mut escaped) = (false, false);
    let mut value = String::new();
    let n = text.chars().count();
    for (i, c) in text.chars().enumerate() {
        if quoted {
            if escaped {
                value.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                if i != n - 1 {
                    let extra: Vec<String> = text.chars().skip(i + 1).map(safe_display).collect();
                    return Err(format!(
                        "Extra character(s) found after close quote: {}",
                        extra.join(", ")
                    ));
                }
                break;
            } else {
                value.push(c);
            }
        } else if i == 0 && c == '"' {
            quoted = true;
        } else {
            value.push(c);
        }
    }
    Ok((value, quoted))
}

struct LocalPart {
    local: String,
    ascii_local: Option<String>,
}

fn validate_local_part(local: &str, quoted: bool) -> Result<LocalPart, Reason> {
    if local.is_empty() {
        return Err("There must be something before the @-sign.".into());
    }
    if is_dot_atom(local, is_atext) {
        return Ok(LocalPart {
            local: local.to_owned(),
            ascii_local: Some(local.to_owned()),
        });
    }
    let mut requires_smtputf8 = false;
    let valid_quoted = if is_dot_atom(local, is_atext_intl) {
        requires_smtputf8 = true;
        Some(false)
    } else if quoted {
        let bad = displays(
            local
                .chars()
                .filter(|&c| !(c == ' ' || c.is_ascii_graphic() || !c.is_ascii())),
        );
        if !bad.is_empty() {
            return Err(format!(
                "The email address contains invalid characters in quotes before the @-sign: {bad}."
            ));
        }
        requires_smtputf8 = !local.chars().all(|c| (' '..='~').contains(&c));
        Some(true)
    } else {
        None
    };
    if let Some(is_quoted) = valid_quoted {
        check_unsafe_chars(local, is_quoted)?;
        let local = if is_quoted {
            let mut q = String::from('"');
            for c in local.chars() {
                if c == '"' || c == '\\' {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            q
        } else {
            local.to_owned()
        };
        let ascii_local = (!requires_smtputf8).then(|| local.clone());
        return Ok(LocalPart { local, ascii_local });
    }
    let bad = displays(local.chars().filter(|&c| c != '.' && !is_atext_intl(c)));
    if !bad.is_empty() {
        return Err(format!(
            "The email address contains invalid characters before the @-sign: {bad}."
        ));
    }
    check_dot_atom(
        local,
        "An email address cannot start with a {}.",
        "An email address cannot have a {} immediately before the @-sign.",
        false,
    )?;
    Err("The email address contains invalid characters before the @-sign.".into())
}

fn validate_domain_literal(lit: &str) -> Result<(), Reason> {
    if !lit.is_empty() && lit.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return parse_ipv4(lit).map_err(|e| {
            format!(
                "The address in brackets after the @-sign is not valid: It is not an IPv4 address ({e}) or is \
                 missing an address literal tag."
            )
        });
    }
    if let Some(v6) = lit.strip_prefix("IPv6:") {
        return v6
            .parse::<std::net::Ipv6Addr>()
            .map(|_| ())
            .map_err(|_| format!("The IPv6 address in brackets after the @-sign is not valid ({v6:?} does not appear to be an IPv6 address)."));
    }
    if !lit.contains(':') {
        return Err("The part after the @-sign in brackets is not an IPv4 address and has no address literal tag.".into());
    }
    let bad = displays(lit.chars().filter(|&c| !('\u{21}'..='\u{FA}').contains(&c)));
    if !bad.is_empty() {
        return Err(format!(
            "The part after the @-sign contains invalid characters in brackets: {bad}."
        ));
    }
    Err("The part after the @-sign contains an invalid address literal tag in brackets.".into())
}

/// Python's `ipaddress.IPv4Address` rules and messages.
fn parse_ipv4(s: &str) -> Result<(), String> {
    let octets: Vec<&str> = s.split('.').collect();
    if octets.len() != 4 {
        return Err(format!("Expected 4 octets in {}", py_repr(s)));
    }
    for o in octets {
        let why = if o.is_empty() {
            "Empty octet not permitted".to_owned()
        } else if o.len() > 3 {
            format!("At most 3 characters permitted in {}", py_repr(o))
        } else if o != "0" && o.starts_with('0') {
            format!("Leading zeros are not permitted in {}", py_repr(o))
        } else {
            match o.parse::<u32>() {
                Ok(v) if v > 255 => format!("Octet {v} (> 255) not permitted"),
                _ => continue,
            }
        };
        return Err(format!("{why} in {}", py_repr(s)));
    }
    Ok(())
}

/// Returns `(unicode domain, ASCII domain)`.
fn validate_domain_name(domain: &str) -> Result<(String, String), Reason> {
    let bad_hostname_chars = |d: &str| {
        displays(
            d.chars()
                .filter(|&c| !(c.is_ascii_alphanumeric() || c == '-' || c == '.' || !c.is_ascii())),
        )
    };
    let bad = bad_hostname_chars(domain);
    if !bad.is_empty() {
        return Err(format!(
            "The part after the @-sign contains invalid characters: {bad}."
        ));
    }
    check_unsafe_chars(domain, false)?;
    let bad = displays(domain.chars().filter(|&c| !uts46_valid_char(c)));
    if !bad.is_empty() {
        return Err(format!(
            "The part after the @-sign contains invalid characters: {bad}."
        ));
    }
    let original = domain;
    // UTS-46 mapping and NFC, non-transitional, without the STD3 rules (idna.uts46_remap).
    let domain: String = if domain.is_ascii() {
        domain.to_ascii_lowercase()
    } else {
        Uts46MapperBorrowed::new()
            .map_normalize(domain.chars())
            .collect()
    };
    if domain.contains('\u{FFFD}') {
        return Err(format!(
            "The part after the @-sign contains invalid characters ({IDNA_DETAIL})."
        ));
    }
    let bad = bad_hostname_chars(&domain);
    if !bad.is_empty() {
        return Err(format!(
            "The part after the @-sign contains invalid characters after Unicode normalization: {bad}."
        ));
    }
    check_dot_atom(
        &domain,
        "An email address cannot have a {} immediately after the @-sign.",
        "An email address cannot end with a {}.",
        true,
    )?;
    for label in domain.split('.') {
        let mut cs = label.chars();
        let two: String = cs.by_ref().take(2).collect();
        if two.chars().count() == 2 && cs.as_str().starts_with("--") && two.to_lowercase() != "xn" {
            return Err("An email address cannot have two letters followed by two dashes immediately after the \
                        @-sign or after a period, except Punycode."
                .into());
        }
    }
    let ascii_domain = if is_ascii_hostname(&domain) {
        domain.clone()
    } else {
        let ascii = idna::domain_to_ascii(&domain)
            .map_err(|_| format!("The part after the @-sign is invalid ({}).", IDNA_DETAIL))?;
        if !is_ascii_hostname(&ascii) {
            return Err(
                "The email address contains invalid characters after the @-sign after IDNA encoding.".into()
            );
        }
        ascii
    };
    if ascii_domain.len() > DOMAIN_MAX_LENGTH {
        let diff = ascii_domain.len() - DOMAIN_MAX_LENGTH;
        return Err(if ascii_domain == original {
            format!(
                "The email address is too long after the @-sign {}.",
                length_reason(diff)
            )
        } else {
            let s = if diff == 1 { "" } else { "s" };
            format!("The email address is too long after the @-sign ({diff} byte{s} too many after IDNA encoding).")
        });
    }
    for label in ascii_domain.split('.') {
        if label.len() > DNS_LABEL_LENGTH_LIMIT {
            return Err(format!(
                "After the @-sign, periods cannot be separated by so many characters {}.",
                length_reason(label.len() - DNS_LABEL_LENGTH_LIMIT)
            ));
        }
    }
    if !ascii_domain.contains('.') {
        return Err("The part after the @-sign is not valid. It should have a period.".into());
    }
    if !ascii_domain.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(
            "The part after the @-sign is not valid. It is not within a valid top-level domain."
                .into(),
        );
    }
    for d in SPECIAL_USE_DOMAIN_NAMES {
        if ascii_domain == *d || ascii_domain.ends_with(&format!(".{d}")) {
            return Err(
                "The part after the @-sign is a special-use or reserved name that cannot be used with email.".into()
            );
        }
    }
    let (domain_i18n, res) = idna::domain_to_unicode(&ascii_domain);
    res.map_err(|_| {
        format!(
            "The part after the @-sign is not valid IDNA ({}).",
            IDNA_DETAIL
        )
    })?;
    let bad = bad_hostname_chars(&domain_i18n);
    if !bad.is_empty() {
        return Err(format!(
            "The part after the @-sign contains invalid characters: {bad}."
        ));
    }
    check_unsafe_chars(&domain_i18n, false)?;
    Ok((domain_i18n, ascii_domain))
}

fn validate_length(original: &str, normalized: &str, ascii_form: &str) -> Result<(), Reason> {
    for (addr, what) in [
        (original, None),
        (normalized, Some("after normalization")),
        (
            ascii_form,
            Some("when the part after the @-sign is converted to IDNA ASCII"),
        ),
    ] {
        let (chars, bytes) = (addr.chars().count(), addr.len());
        if bytes <= EMAIL_MAX_LENGTH {
            continue;
        }
        let diff = bytes - EMAIL_MAX_LENGTH;
        let s = if diff > 1 { "s" } else { "" };
        let reason = match what {
            None if chars == bytes => length_reason(diff),
            None => {
                let widest = addr.chars().map(char::len_utf8).max().unwrap_or(1);
                let min_chars = (diff / widest).max(1);
                if min_chars == diff {
                    format!("({diff} character{s} too many)")
                } else {
                    format!("({min_chars}-{diff} character{s} too many)")
                }
            }
            Some(what) => format!("{what} ({diff} byte{s} too many)"),
        };
        return Err(format!("The email address is too long {reason}."));
    }
    Ok(())
}

fn length_reason(diff: usize) -> String {
    format!(
        "({diff} character{} too many)",
        if diff > 1 { "s" } else { "" }
    )
}

fn check_dot_atom(label: &str, start: &str, end: &str, is_hostname: bool) -> Result<(), Reason> {
    let fill = |template: &str, what: &str| template.replacen("{}", what, 1);
    if label.ends_with('.') {
        return Err(fill(end, "period"));
    }
    if label.starts_with('.') {
        return Err(fill(start, "period"));
    }
    if label.contains("..") {
        return Err("An email address cannot have two periods in a row.".into());
    }
    if is_hostname {
        if label.ends_with('-') {
            return Err(fill(end, "hyphen"));
        }
        if label.starts_with('-') {
            return Err(fill(start, "hyphen"));
        }
        if label.contains(".-") || label.contains("-.") {
            return Err(
                "An email address cannot have a period and a hyphen next to each other.".into(),
            );
        }
    }
    Ok(())
}

fn check_unsafe_chars(s: &str, allow_space: bool) -> Result<(), Reason> {
    let mut bad: Vec<char> = Vec::new();
    for (i, c) in s.chars().enumerate() {
        let cat = category(c);
        let unsafe_char = match cat.as_bytes()[0] {
            b'L' | b'N' | b'P' | b'S' => false,
            b'M' => i == 0,
            _ if cat == "Zs" => !allow_space,
            _ => true,
        };
        if unsafe_char && !bad.contains(&c) {
            bad.push(c);
        }
    }
    if bad.is_empty() {
        return Ok(());
    }
    bad.sort_unstable();
    let shown: Vec<String> = bad.into_iter().map(safe_display).collect();
    Err(format!(
        "The email address contains unsafe characters: {}.",
        shown.join(", ")
    ))
}

/// email-validator's approximation of what UTS-46 mapping rejects.
fn uts46_valid_char(c: char) -> bool {
    let n = u32::from(c);
    if (0x80..=0x9f).contains(&n) {
        return false;
    }
    if ((0x2010..=0x2060).contains(&n)
        && !(0x2024..=0x2026).contains(&n)
        && !(0x2028..=0x202E).contains(&n))
        || matches!(n, 0xAD | 0x2064 | 0xFF0E)
        || (0x200B..=0x200D).contains(&n)
        || (0x1BCA0..=0x1BCA3).contains(&n)
    {
        return true;
    }
    if matches!(category(c), "Cf" | "Cn" | "Co" | "Cs" | "Zs" | "Zl" | "Zp") {
        return false;
    }
    // Characters whose decomposition contains a full stop (U+002E).
    c.is_ascii()
        || !DecomposingNormalizerBorrowed::new_nfkd()
            .normalize(c.encode_utf8(&mut [0; 4]))
            .contains('.')
}

fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "_!#$%&'*+-/=?^`{|}~".contains(c)
}

fn is_atext_intl(c: char) -> bool {
    is_atext(c) || !c.is_ascii()
}

fn is_dot_atom(s: &str, atext: fn(char) -> bool) -> bool {
    s.split('.')
        .all(|part| !part.is_empty() && part.chars().all(atext))
}

/// `(?:[a-zA-Z0-9][a-zA-Z0-9-]*)?[a-zA-Z0-9]` labels joined by dots.
fn is_ascii_hostname(s: &str) -> bool {
    s.split('.').all(|l| {
        let b = l.as_bytes();
        !b.is_empty()
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
    })
}

fn nfc(s: &str) -> String {
    ComposingNormalizerBorrowed::new_nfc()
        .normalize(s)
        .into_owned()
}

/// Unicode general category as Python's `unicodedata.category` spells it.
fn category(c: char) -> &'static str {
    use GeneralCategory as G;
    match CodePointMapData::<GeneralCategory>::new().get(c) {
        G::Unassigned => "Cn",
        G::UppercaseLetter => "Lu",
        G::LowercaseLetter => "Ll",
        G::TitlecaseLetter => "Lt",
        G::ModifierLetter => "Lm",
        G::OtherLetter => "Lo",
        G::NonspacingMark => "Mn",
        G::EnclosingMark => "Me",
        G::SpacingMark => "Mc",
        G::DecimalNumber => "Nd",
        G::LetterNumber => "Nl",
        G::OtherNumber => "No",
        G::SpaceSeparator => "Zs",
        G::LineSeparator => "Zl",
        G::ParagraphSeparator => "Zp",
        G::Control => "Cc",
        G::Format => "Cf",
        G::PrivateUse => "Co",
        G::Surrogate => "Cs",
        G::DashPunctuation => "Pd",
        G::OpenPunctuation => "Ps",
        G::ClosePunctuation => "Pe",
        G::ConnectorPunctuation => "Pc",
        G::OtherPunctuation => "Po",
        G::MathSymbol => "Sm",
        G::CurrencySymbol => "Sc",
        G::ModifierSymbol => "Sk",
        G::OtherSymbol => "So",
        G::InitialPunctuation => "Pi",
        G::FinalPunctuation => "Pf",
    }
}

/// email-validator's `safe_character_display`.
fn safe_display(c: char) -> String {
    if c == '\\' {
        return "\"\\\"".into();
    }
    if matches!(category(c).as_bytes()[0], b'L' | b'N' | b'P' | b'S') {
        return if c == '\'' {
            "\"'\"".into()
        } else {
            format!("'{c}'")
        };
    }
    if let Some(name) = char_name(c) {
        return name.into();
    }
    let n = u32::from(c);
    if n < 0xFFFF {
        format!("U+{n:04X}")
    } else {
        format!("U+{n:08X}")
    }
}

/// Names (`unicodedata.name`) of the invisible characters most likely to be pasted into an
/// address; control characters have none in Python either.
fn char_name(c: char) -> Option<&'static str> {
    Some(match c {
        ' ' => "SPACE",
        '\u{A0}' => "NO-BREAK SPACE",
        '\u{AD}' => "SOFT HYPHEN",
        '\u{300}' => "COMBINING GRAVE ACCENT",
        '\u{301}' => "COMBINING ACUTE ACCENT",
        '\u{1680}' => "OGHAM SPACE MARK",
        '\u{2000}' => "EN QUAD",
        '\u{2001}' => "EM QUAD",
        '\u{2002}' => "EN SPACE",
        '\u{2003}' => "EM SPACE",
        '\u{2004}' => "THREE-PER-EM SPACE",
        '\u{2005}' => "FOUR-PER-EM SPACE",
        '\u{2006}' => "SIX-PER-EM SPACE",
        '\u{2007}' => "FIGURE SPACE",
        '\u{2008}' => "PUNCTUATION SPACE",
        '\u{2009}' => "THIN SPACE",
        '\u{200A}' => "HAIR SPACE",
        '\u{200B}' => "ZERO WIDTH SPACE",
        '\u{200C}' => "ZERO WIDTH NON-JOINER",
        '\u{200D}' => "ZERO WIDTH JOINER",
        '\u{200E}' => "LEFT-TO-RIGHT MARK",
        '\u{200F}' => "RIGHT-TO-LEFT MARK",
        '\u{2028}' => "LINE SEPARATOR",
        '\u{2029}' => "PARAGRAPH SEPARATOR",
        '\u{202F}' => "NARROW NO-BREAK SPACE",
        '\u{205F}' => "MEDIUM MATHEMATICAL SPACE",
        '\u{3000}' => "IDEOGRAPHIC SPACE",
        '\u{FEFF}' => "ZERO WIDTH NO-BREAK SPACE",
        _ => return None,
    })
}

/// Displays of the distinct characters, sorted as Python sorts the strings, joined by ", ".
fn displays(chars: impl Iterator<Item = char>) -> String {
    let mut shown: Vec<String> = chars.map(safe_display).collect();
    shown.sort();
    shown.dedup();
    shown.join(", ")
}

/// Python's `str.isspace` (Unicode White_Space plus the separators U+001C..U+001F).
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1C}'..='\u{1F}').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python's `\w` on `str`: alphanumerics and the underscore.
fn is_py_word(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Python's `repr()` of a `str`.
pub(crate) fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c == ' ' || c.is_ascii_graphic() => out.push(c),
            c if c.is_ascii() || !py_isprintable(c) => {
                let n = u32::from(c);
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else if n < 0x10000 {
                    out.push_str(&format!("\\u{n:04x}"));
                } else {
                    out.push_str(&format!("\\U{n:08x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn py_isprintable(c: char) -> bool {
    !matches!(
        category(c),
        "Cc" | "Cf" | "Cs" | "Co" | "Cn" | "Zl" | "Zp" | "Zs"
    )
}

/// pydantic-core shortens a long `input_value` repr to its first 25 and last 24 bytes (on
/// character boundaries).
fn truncate_repr(r: &str) -> String {
    if r.len() <= 50 {
        return r.to_owned();
    }
    let mut head = 25;
    while !r.is_char_boundary(head) {
        head -= 1;
    }
    let mut tail = r.len() - 24;
    while !r.is_char_boundary(tail) {
        tail += 1;
    }
    format!("{}...{}", &r[..head], &r[tail..])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (input, Ok(normalised) or Err(reason)), checked against pydantic 2.14 + email-validator 2.3.
    const CASES: &[(&str, Result<&str, &str>)] = &[
        ("bob@example.com", Ok("bob@example.com")),
        ("user@example.com", Ok("user@example.com")),
        (" Bob@Example.COM ", Ok("Bob@example.com")),
        ("John Doe <jd@x.com>", Ok("jd@x.com")),
        ("\"Doe, John\" <jd@x.com>", Ok("jd@x.com")),
        ("<jd@x.com>", Ok("jd@x.com")),
        ("Info@Example.org", Ok("info@example.org")),
        ("first.last+tag@sub.example.co.uk", Ok("first.last+tag@sub.example.co.uk")),
        ("x@münchen.de", Ok("x@münchen.de")),
        ("x@xn--mnchen-3ya.de", Ok("x@münchen.de")),
        ("x@MÜNCHEN.de", Ok("x@münchen.de")),
        ("Ünï@x.com", Ok("Ünï@x.com")),
        ("U\u{308}@x.com", Ok("Ü@x.com")),
        ("notanemail", Err("An email address must have an @-sign.")),
        ("", Err("An email address must have an @-sign.")),
        ("a@b", Err("The part after the @-sign is not valid. It should have a period.")),
        ("a@b.c1", Err("The part after the @-sign is not valid. It is not within a valid top-level domain.")),
        ("a..b@x.com", Err("An email address cannot have two periods in a row.")),
        (".a@x.com", Err("An email address cannot start with a period.")),
        ("a.@x.com", Err("An email address cannot have a period immediately before the @-sign.")),
        ("x@localhost", Err("The part after the @-sign is not valid. It should have a period.")),
        ("x@foo.test", Err("The part after the @-sign is a special-use or reserved name that cannot be used with email.")),
        ("x@foo.local", Err("The part after the @-sign is a special-use or reserved name that cannot be used with email.")),
        ("@x.com", Err("There must be something before the @-sign.")),
        ("x@", Err("There must be something after the @-sign.")),
        ("a b@x.com", Err("The email address contains invalid characters before the @-sign: SPACE.")),
        ("a(b)@x.com", Err("The email address contains invalid characters before the @-sign: '(', ')'.")),
        ("a@b@x.com", Err("The part after the @-sign contains invalid characters: '@'.")),
        ("x@-x.com", Err("An email address cannot have a hyphen immediately after the @-sign.")),
        ("x@x-.com", Err("An email address cannot have a period and a hyphen next to each other.")),
        ("x@x.com-", Err("An email address cannot end with a hyphen.")),
        ("x@x.com.", Err("An email address cannot end with a period.")),
        ("x@.x.com", Err("An email address cannot have a period immediately after the @-sign.")),
        ("x@ab--c.com", Err("An email address cannot have two letters followed by two dashes immediately after the @-sign or after a period, except Punycode.")),
        ("x@x_y.com", Err("The part after the @-sign contains invalid characters: '_'.")),
        ("\"quoted\"@x.com", Err("Quoting the part before the @-sign is not allowed here.")),
        ("\"a b\"@x.com", Err("Quoting the part before the @-sign is not allowed here.")),
        ("\"a\"b@x.com", Err("Extra character(s) found after close quote: 'b'")),
        ("x@[1.2.3.4]", Err("A bracketed IP address after the @-sign is not allowed here.")),
        ("x@[1.2.3]", Err("The address in brackets after the @-sign is not valid: It is not an IPv4 address (Expected 4 octets in '1.2.3') or is missing an address literal tag.")),
        ("x@[1.2.3.256]", Err("The address in brackets after the @-sign is not valid: It is not an IPv4 address (Octet 256 (> 255) not permitted in '1.2.3.256') or is missing an address literal tag.")),
        ("x@[IPv6:::1]", Err("A bracketed IP address after the @-sign is not allowed here.")),
        ("x@[foo]", Err("The part after the @-sign in brackets is not an IPv4 address and has no address literal tag.")),
        ("a\u{FF20}x.com", Err("The email address has the \"full-width\" at-sign (@) character instead of a regular at-sign.")),
        ("a\u{200B}b@x.com", Err("The email address contains unsafe characters: ZERO WIDTH SPACE.")),
        ("x@exa\u{A0}mple.com", Err("The email address contains unsafe characters: NO-BREAK SPACE.")),
        ("tab\there@x.com", Err("The email address contains invalid characters before the @-sign: U+0009.")),
        ("a\nb@x.com", Err("Carriage return and line feed characters are not allowed")),
        ("Joe <a@b.com> x", Err("There can't be anything after the email address.")),
        ("Joe <a@b.com", Err("An open angle bracket at the start of the email address has to be followed by a close angle bracket at the end.")),
    ];

    #[test]
    fn reference_table() {
        for (input, want) in CASES {
            let got = pydantic_validate(input);
            assert_eq!(
                got.as_deref().map_err(String::as_str),
                *want,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn length_limits() {
        let local = "a".repeat(64);
        let long = format!("{local}@{}.com", "b".repeat(63));
        assert!(pydantic_validate(&long).is_ok());
        let too_long = format!(
            "{}@{}.{}.{}.{}.com",
            "a".repeat(10),
            "b".repeat(60),
            "c".repeat(60),
            "d".repeat(60),
            "e".repeat(60)
        );
        assert_eq!(
            pydantic_validate(&too_long).unwrap_err(),
            "The email address is too long (4 characters too many)."
        );
        let label = format!("x@{}.com", "b".repeat(64));
        assert_eq!(
            pydantic_validate(&label).unwrap_err(),
            "After the @-sign, periods cannot be separated by so many characters (1 character too many)."
        );
        assert_eq!(
            pydantic_validate(&"a".repeat(2049)).unwrap_err(),
            "Length must not exceed 2048 characters"
        );
    }

    #[test]
    fn pydantic_message_text() {
        let e = validate_email("notanemail").unwrap_err();
        assert_eq!(
            e.to_string(),
            "1 validation error for UserCreate\nemail\n  value is not a valid email address: An email address must \
             have an @-sign. [type=value_error, input_value='notanemail', input_type=str]"
        );
    }

    #[test]
    fn python_repr_and_truncation() {
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("it's\""), "'it\\'s\"'");
        assert_eq!(py_repr("tab\there"), "'tab\\there'");
        assert_eq!(py_repr("\u{0}ab"), "'\\x00ab'");
        assert_eq!(py_repr("a\u{2028}b"), "'a\\u2028b'");
        assert_eq!(py_repr("ñandú"), "'ñandú'");
        assert_eq!(
            truncate_repr(&py_repr(&"a".repeat(60))),
            format!("'{}...{}'", "a".repeat(24), "a".repeat(23))
        );
        let mixed = format!("{}{}", "a".repeat(23), "é".repeat(40));
        assert_eq!(
            truncate_repr(&py_repr(&mixed)),
            format!("'{}...{}'", "a".repeat(23), "é".repeat(11))
        );
    }
}
