//! The contract between the APK's Java classes and `jni_glue.rs`, checked on the host:
//! every `native` method the Java code declares has its exported Rust function, with the
//! JNI name the JVM looks up and matching parameter and return types; and the callback
//! numbers agree. (`jni_glue.rs` itself only builds for Android, so it is read as text.)

use std::path::{Path, PathBuf};

fn java_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("apk/app/src/main/java/im/starling/android")
}

/// A `native` method declared in Java: (JNI symbol, parameter types, return type), types
/// as the `jni` crate names them.
fn java_natives() -> Vec<(String, Vec<String>, String)> {
    let mut found = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(java_dir())
        .expect("the APK's Java sources")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "java"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("a Java source");
        let class = file
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a class name");
        let package = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("package "))
            .and_then(|p| p.strip_suffix(';'))
            .expect("a package line");
        for line in text.lines().map(str::trim) {
            let Some((head, rest)) = line.split_once('(') else {
                continue;
            };
            let words: Vec<&str> = head.split_whitespace().collect();
            if !words.contains(&"native") {
                continue;
            }
            let (ret, name) = match words.as_slice() {
                [.., ret, name] => (*ret, *name),
                _ => panic!("cannot read {line}"),
            };
            let params = rest
                .trim_end_matches(';')
                .trim_end_matches(')')
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| jni_type(p.split_whitespace().next().expect("a parameter type")))
                .collect();
            let symbol = format!("Java_{}_{class}_{name}", package.replace('.', "_"));
            found.push((symbol, params, jni_type(ret)));
        }
    }
    found
}

/// The `jni` crate's type for a Java type (the ones the glue uses).
fn jni_type(java: &str) -> String {
    match java {
        "String" => "JString",
        "byte[]" => "JByteArray",
        "int" => "jint",
        "void" => "()",
        other => panic!("no JNI mapping for Java type {other}"),
    }
    .to_owned()
}

/// The exported functions in `jni_glue.rs`, in the same form.
fn rust_natives() -> Vec<(String, Vec<String>, String)> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/jni_glue.rs"))
            .expect("jni_glue.rs");
    let marker = "pub extern \"system\" fn ";
    text.split(marker)
        .skip(1)
        .map(|chunk| {
            let name_end = chunk.find(['<', '(']).expect("a function name");
            let name = chunk[..name_end].to_owned();
            let open = chunk.find('(').expect("parameters");
            let close = chunk[open..].find(')').expect("end of parameters") + open;
            let params: Vec<String> = chunk[open + 1..close]
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let ty = p.split(':').nth(1).expect("a typed parameter").trim();
                    ty.split('<').next().unwrap_or(ty).to_owned()
                })
                .collect();
            let after = &chunk[close + 1..chunk.find('{').expect("a body")];
            let ret = after
                .trim()
                .strip_prefix("->")
                .map(|r| r.trim().split('<').next().unwrap_or("").to_owned())
                .unwrap_or_else(|| "()".to_owned());
            // Every native method starts with the JNI environment and the class (static).
            assert_eq!(
                params.get(..2),
                Some(&["EnvUnowned".to_owned(), "JClass".to_owned()][..]),
                "{name}: env and class first"
            );
            (name, params[2..].to_vec(), ret)
        })
        .collect()
}

#[test]
fn every_java_native_method_has_its_rust_function() {
    let java = java_natives();
    let rust = rust_natives();
    assert!(java.len() >= 3, "found the Java natives: {java:?}");
    for native in &java {
        assert!(
            rust.contains(native),
            "Java declares {native:?}, but jni_glue.rs has {rust:?}"
        );
    }
    for function in &rust {
        assert!(
            java.iter().any(|j| j.0 == function.0),
            "jni_glue.rs exports {} that no Java class declares",
            function.0
        );
    }
}

#[test]
fn the_callback_numbers_agree() {
    let text = std::fs::read_to_string(java_dir().join("PushReceiver.java")).expect("PushReceiver");
    for (name, value) in [
        ("NEW_ENDPOINT", crate::receiver::NEW_ENDPOINT),
        ("MESSAGE", crate::receiver::MESSAGE),
        ("UNREGISTERED", crate::receiver::UNREGISTERED),
        ("REGISTRATION_FAILED", crate::receiver::REGISTRATION_FAILED),
    ] {
        let line = format!("private static final int {name} = {value};");
        assert!(text.contains(&line), "PushReceiver.java lacks {line}");
    }
}
