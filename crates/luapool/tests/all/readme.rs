//! The repository's README quotes this crate's README example (the one compiled as a
//! doctest, see `ReadmeDoctests` in `src/lib.rs`): its `Cargo.toml` lines and its Rust
//! code must be the same text in both.

use std::path::{Path, PathBuf};

/// The first fenced block in `text` whose info string is `lang`, fences included.
fn fenced<'a>(text: &'a str, lang: &str) -> Option<&'a str> {
    let open = format!("```{lang}\n");
    let start = text
        .match_indices(&open)
        .map(|(i, _)| i)
        .find(|&i| i == 0 || text[..i].ends_with('\n'))?;
    let body = start + open.len();
    let end = text[body..].find("\n```\n")? + body + "\n```\n".len();
    Some(&text[start..end])
}

/// The repository's README, or `None` when this crate is not in the repository (its
/// published package, which has no README of the repository to compare with).
fn root_readme() -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.join("../..");
    let in_repository = root
        .join("crates/luapool")
        .canonicalize()
        .is_ok_and(|p| here.canonicalize().is_ok_and(|h| h == p));
    in_repository.then(|| root.join("README.md"))
}

#[test]
fn the_repository_readme_quotes_the_crate_readme_example() {
    let Some(root_path) = root_readme() else {
        eprintln!("not in the repository: nothing to compare");
        return;
    };
    let crate_readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let root_readme = std::fs::read_to_string(&root_path).unwrap();
    for lang in ["toml", "rust"] {
        let want = fenced(&crate_readme, lang)
            .unwrap_or_else(|| panic!("crates/luapool/README.md has no ```{lang} block"));
        let got = fenced(&root_readme, lang)
            .unwrap_or_else(|| panic!("README.md has no ```{lang} block"));
        assert_eq!(
            got, want,
            "README.md's first ```{lang} block differs from crates/luapool/README.md's: \
             copy the crate README's (it is the one compiled as a doctest)"
        );
    }
}
