use super::*;
use crate::restore::{JOURNAL, NEW, OLD};
use openclaw_store::Store;
use std::io::Write;

struct Fixture {
    _dir: tempfile::TempDir,
    layout: Layout,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    fs::create_dir_all(data.join("channels/whatsapp")).unwrap();
    fs::write(
        data.join("channels/whatsapp/creds.json"),
        b"{\"session\":\"one\"}",
    )
    .unwrap();
    let config = dir.path().join("config.yaml");
    fs::write(&config, "agent:\n  name: One\n").unwrap();
    let store = Store::open_in_dir(&data).unwrap();
    store.save_memory("the first memory", "", 1).unwrap();
    let s = store.upsert_session("webchat", "alice", 1).unwrap();
    store.append_message(s, "user", "hello", 1, 1).unwrap();
    Fixture {
        layout: Layout {
            db: data.join("openclaw.db"),
            config: Some(config),
            channels: data.join("channels"),
            backups: data.join("backups"),
            data_dir: data,
        },
        _dir: dir,
    }
}

fn quiet() -> impl FnMut(Stage, u64, u64) {
    |_, _, _| {}
}

fn backup(f: &Fixture) -> Created {
    create(&f.layout, Include::ALL, "0.1.0", None, &mut quiet()).unwrap()
}

#[test]
fn create_list_verify_round_trip() {
    let f = fixture();
    let mut stages = Vec::new();
    let c = create(&f.layout, Include::ALL, "0.1.0", None, &mut |s, _, _| {
        stages.push(s)
    })
    .unwrap();
    assert!(stages.contains(&Stage::CopyDatabase) && stages.contains(&Stage::Pack));
    assert!(
        c.path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("openclaw-backup-")
    );
    assert_eq!(
        c.manifest.parts,
        ["memory", "sessions", "config", "channel_auth"]
    );
    assert_eq!(
        c.manifest.schema_version,
        Some(openclaw_store::SCHEMA_VERSION)
    );
    let names: Vec<_> = c.manifest.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        names,
        [
            "db/openclaw.db",
            "config/config.yaml",
            "channels/whatsapp/creds.json"
        ]
    );
    let listed = list(&f.layout.backups).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].size, c.size);
    // No staging or partial files are left next to it.
    assert_eq!(fs::read_dir(&f.layout.backups).unwrap().count(), 1);
    let m = verify(&c.path, &f.layout.data_dir, &mut quiet()).unwrap();
    assert_eq!(m, c.manifest);
}

#[test]
fn include_is_honoured() {
    let f = fixture();
    let only_config = Include {
        memory: false,
        sessions: false,
        config: true,
        channel_auth: false,
    };
    let c = create(&f.layout, only_config, "0.1.0", None, &mut quiet()).unwrap();
    assert_eq!(c.manifest.parts, ["config"]);
    assert_eq!(c.manifest.files.len(), 1);
    assert_eq!(c.manifest.schema_version, None);
}

#[test]
fn retention_keeps_the_newest() {
    let f = fixture();
    let mut made = Vec::new();
    for _ in 0..4 {
        made.push(backup(&f).path);
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let removed = prune(&f.layout.backups, 2).unwrap();
    assert_eq!(removed, made[..2]);
    let left: Vec<_> = list(&f.layout.backups)
        .unwrap()
        .into_iter()
        .map(|l| l.path)
        .collect();
    assert_eq!(left, made[2..]);
}

fn rewrite(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = fs::read(path).unwrap();
    f(&mut bytes);
    fs::write(path, bytes).unwrap();
}

fn expect_invalid(archive: &Path, scratch: &Path, needle: &str) {
    match verify(archive, scratch, &mut quiet()) {
        Err(Error::Invalid { reason, .. }) => assert!(reason.contains(needle), "{reason}"),
        other => panic!("expected an invalid archive ({needle}), got {other:?}"),
    }
}

#[test]
fn damaged_and_truncated_archives_are_refused() {
    let f = fixture();
    let c = backup(&f);
    let truncated = f.layout.data_dir.join("truncated.tar.gz");
    fs::copy(&c.path, &truncated).unwrap();
    rewrite(&truncated, |b| b.truncate(b.len() * 2 / 3));
    expect_invalid(&truncated, &f.layout.data_dir, "truncated or corrupt");

    let corrupt = f.layout.data_dir.join("corrupt.tar.gz");
    fs::copy(&c.path, &corrupt).unwrap();
    rewrite(&corrupt, |b| {
        let mid = b.len() / 2;
        for x in &mut b[mid..mid + 64] {
            *x ^= 0xff;
        }
    });
    assert!(verify(&corrupt, &f.layout.data_dir, &mut quiet()).is_err());
    // Nothing is left in the scratch dir.
    assert!(fs::read_dir(&f.layout.data_dir).unwrap().all(|e| {
        !e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".openclaw-verify-")
    }));
}

/// Writes a tar.gz with the given (raw name, content) entries, names written byte for byte.
fn handmade(path: &Path, entries: &[(&[u8], &[u8])]) {
    let gz =
        flate2::write::GzEncoder::new(File::create(path).unwrap(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, data) in entries {
        let mut h = tar::Header::new_old();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_size(data.len() as u64);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        tar.append(&h, *data).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

/// A manifest for `files`, listing the parts they belong to.
fn manifest_for(files: &[(&str, &[u8])], format_version: u32) -> Vec<u8> {
    let mut parts: Vec<String> = Vec::new();
    for (p, _) in files {
        let part = match *p {
            "db/openclaw.db" => "memory",
            "config/config.yaml" => "config",
            _ => "channel_auth",
        };
        if !parts.iter().any(|x| x == part) {
            parts.push(part.into());
        }
    }
    let m = Manifest {
        format_version,
        app_version: "9.9.9".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        parts,
        schema_version: None,
        files: files
            .iter()
            .map(|(p, d)| FileEntry {
                path: (*p).into(),
                sha256: hex::encode(Sha256::digest(d)),
                size: d.len() as u64,
            })
            .collect(),
    };
    serde_json::to_vec(&m).unwrap()
}

#[test]
fn path_traversal_links_wrong_hashes_and_newer_formats_are_refused() {
    let f = fixture();
    let dir = &f.layout.data_dir;
    let a = dir.join("evil.tar.gz");
    let cfg: &[u8] = b"agent: {}\n";
    handmade(
        &a,
        &[
            (
                b"MANIFEST.json",
                &manifest_for(&[("config/config.yaml", cfg)], 1),
            ),
            (b"../../evil.sh", b"rm -rf /"),
        ],
    );
    expect_invalid(&a, dir, "escapes the archive");
    assert!(!f._dir.path().join("evil.sh").exists());

    handmade(
        &a,
        &[
            (b"MANIFEST.json", &manifest_for(&[], 1)),
            (b"/etc/passwd", b"x"),
        ],
    );
    expect_invalid(&a, dir, "escapes the archive");

    let tampered = manifest_for(&[("config/config.yaml", b"something else")], 1);
    handmade(
        &a,
        &[(b"MANIFEST.json", &tampered), (b"config/config.yaml", cfg)],
    );
    expect_invalid(&a, dir, "bytes, the manifest says");
    let same_size = manifest_for(&[("config/config.yaml", b"agent: []\n")], 1);
    handmade(
        &a,
        &[(b"MANIFEST.json", &same_size), (b"config/config.yaml", cfg)],
    );
    expect_invalid(&a, dir, "SHA-256");

    handmade(
        &a,
        &[
            (b"MANIFEST.json", &manifest_for(&[], 1)),
            (b"config/config.yaml", cfg),
        ],
    );
    expect_invalid(&a, dir, "not listed in the manifest");

    handmade(&a, &[(b"config/config.yaml", cfg)]);
    expect_invalid(&a, dir, "no MANIFEST.json");

    handmade(
        &a,
        &[
            (
                b"MANIFEST.json",
                &manifest_for(&[("config/config.yaml", cfg)], 2),
            ),
            (b"config/config.yaml", cfg),
        ],
    );
    assert!(matches!(
        verify(&a, dir, &mut quiet()),
        Err(Error::NewerFormat {
            found: 2,
            supported: 1,
            ..
        })
    ));

    // A symlink entry.
    let gz = flate2::write::GzEncoder::new(File::create(&a).unwrap(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let m = manifest_for(&[], 1);
    let mut h = tar::Header::new_gnu();
    h.set_size(m.len() as u64);
    h.set_cksum();
    tar.append_data(&mut h, MANIFEST, m.as_slice()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    tar.append_link(&mut h, "channels/link", "/etc/shadow")
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap();
    expect_invalid(&a, dir, "link");
}

#[test]
fn restore_replaces_config_channels_and_database_and_keeps_the_old_state() {
    let f = fixture();
    let c = backup(&f);
    // Life goes on after the backup.
    {
        let store = Store::open(&f.layout.db).unwrap();
        store
            .save_memory("written after the backup", "", 2)
            .unwrap();
    }
    fs::write(f.layout.config.as_ref().unwrap(), "agent:\n  name: Two\n").unwrap();
    fs::write(
        f.layout.channels.join("whatsapp/creds.json"),
        b"{\"session\":\"two\"}",
    )
    .unwrap();
    fs::write(f.layout.channels.join("new-file"), b"x").unwrap();

    let mut swaps = Vec::new();
    let r = restore(&c.path, &f.layout, "0.1.0", &mut |s, done, total| {
        if s == Stage::Swap {
            swaps.push((done, total));
        }
    })
    .unwrap();
    assert_eq!(swaps.last().map(|s| s.0), swaps.last().map(|s| s.1));
    assert_eq!(
        fs::read_to_string(f.layout.config.as_ref().unwrap()).unwrap(),
        "agent:\n  name: One\n"
    );
    assert_eq!(
        fs::read(f.layout.channels.join("whatsapp/creds.json")).unwrap(),
        b"{\"session\":\"one\"}"
    );
    assert!(!f.layout.channels.join("new-file").exists());
    let store = Store::open(&f.layout.db).unwrap();
    assert_eq!(store.search_memories("first", 5).unwrap().len(), 1);
    assert!(store.search_memories("after", 5).unwrap().is_empty());
    assert_eq!(store.totals().unwrap().sessions, 1);
    drop(store);

    // The state before the restore is an archive of its own, and holds the later memory.
    assert!(r.pre_restore.path.to_string_lossy().contains("pre-restore"));
    let scratch = f.layout.data_dir.join("pre");
    let unpacked = unpack_verified(&r.pre_restore.path, &scratch, &mut quiet()).unwrap();
    let old = Store::open(&unpacked.dir.join("db/openclaw.db")).unwrap();
    assert_eq!(old.search_memories("after", 5).unwrap().len(), 1);
    // Nothing staged or journalled is left behind.
    for e in fs::read_dir(&f.layout.data_dir).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !n.contains(".restore") && !n.contains(".pre-restore"),
            "left behind: {n}"
        );
    }
}

#[test]
fn a_damaged_archive_is_refused_before_anything_changes() {
    let f = fixture();
    let c = backup(&f);
    fs::write(f.layout.config.as_ref().unwrap(), "agent:\n  name: Two\n").unwrap();
    rewrite(&c.path, |b| b.truncate(b.len() - 100));
    assert!(restore(&c.path, &f.layout, "0.1.0", &mut quiet()).is_err());
    assert_eq!(
        fs::read_to_string(f.layout.config.as_ref().unwrap()).unwrap(),
        "agent:\n  name: Two\n"
    );
    // No pre-restore archive either: nothing was started.
    assert_eq!(list(&f.layout.backups).unwrap().len(), 1);
}

#[test]
fn an_interrupted_restore_is_rolled_back() {
    let f = fixture();
    let c = backup(&f);
    fs::write(f.layout.config.as_ref().unwrap(), "agent:\n  name: Two\n").unwrap();
    {
        let store = Store::open(&f.layout.db).unwrap();
        store.save_memory("newer", "", 2).unwrap();
    }
    for stop_after in 1..=3u64 {
        // Die after `stop_after` swaps (as a kill -9 would).
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = restore(&c.path, &f.layout, "0.1.0", &mut |s, done, _| {
                if s == Stage::Swap && done == stop_after {
                    panic!("killed");
                }
            });
        }));
        assert!(result.is_err());
        assert!(
            f.layout.data_dir.join(JOURNAL).exists(),
            "journal must survive the crash"
        );
        assert!(recover_interrupted(&f.layout.data_dir).unwrap());
        assert!(
            !recover_interrupted(&f.layout.data_dir).unwrap(),
            "only once"
        );
        assert_eq!(
            fs::read_to_string(f.layout.config.as_ref().unwrap()).unwrap(),
            "agent:\n  name: Two\n"
        );
        let store = Store::open(&f.layout.db).unwrap();
        assert_eq!(
            store.search_memories("newer", 5).unwrap().len(),
            1,
            "after {stop_after} swaps"
        );
    }
}

use openclaw_testkit::archive::RawTar;

/// The manifest as a crafted archive's first member.
trait WithManifest {
    fn manifest(self, m: &Manifest) -> Self;
}

impl WithManifest for RawTar {
    fn manifest(self, m: &Manifest) -> Self {
        self.file(MANIFEST, &serde_json::to_vec(m).unwrap())
    }
}

fn entry(path: &str, data: &[u8]) -> FileEntry {
    FileEntry {
        path: path.into(),
        sha256: hex::encode(Sha256::digest(data)),
        size: data.len() as u64,
    }
}

fn manifest(parts: &[&str], files: Vec<FileEntry>) -> Manifest {
    Manifest {
        format_version: FORMAT_VERSION,
        app_version: "9.9.9".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        parts: parts.iter().map(|p| (*p).to_owned()).collect(),
        schema_version: None,
        files,
    }
}

/// Every regular file under `dir`, with its size.
fn written(dir: &Path) -> Vec<(PathBuf, u64)> {
    files_under(dir)
        .unwrap()
        .into_iter()
        .map(|r| {
            let len = fs::metadata(dir.join(&r)).unwrap().len();
            (r, len)
        })
        .collect()
}

fn unpack_err(archive: &Path, into: &Path, limits: &Limits) -> Error {
    match unpack_with_limits(archive, into, limits, &mut quiet()) {
        Ok(u) => panic!("expected a refusal, got {:?}", u.manifest),
        Err(e) => e,
    }
}

fn reason(e: &Error) -> String {
    match e {
        Error::Invalid { reason, .. } => reason.clone(),
        other => panic!("expected an invalid archive, got {other:?}"),
    }
}

#[test]
fn a_member_larger_than_its_manifest_entry_is_refused_before_a_byte_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("bomb.tar.gz");
    let cfg = b"agent: {}\n";
    // The header says 10 GiB; the manifest says 10 bytes. Only 1 MiB follows: the reader must
    // not even get that far.
    RawTar::new()
        .manifest(&manifest(
            &["config"],
            vec![entry("config/config.yaml", cfg)],
        ))
        .header(b"config/config.yaml", tar::EntryType::Regular, 10 << 30)
        .zeros(1 << 20)
        .write(&a)
        .unwrap();
    assert!(fs::metadata(&a).unwrap().len() < 64 * 1024);
    let into = dir.path().join("out");
    let started = std::time::Instant::now();
    let e = unpack_err(&a, &into, &Limits::DEFAULT);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    let r = reason(&e);
    assert!(
        r.contains("`config/config.yaml` is 10737418240 bytes, the manifest says 10"),
        "{r}"
    );
    assert!(written(&into).is_empty(), "{:?}", written(&into));
}

#[test]
fn a_member_is_never_written_past_its_declared_size() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("liar.tar.gz");
    // Header and manifest agree on 4 MiB, but the bytes are not the ones the manifest hashed:
    // at most the declared 4 MiB are written, then the hash refuses it.
    let claimed = vec![7u8; 4 << 20];
    RawTar::new()
        .manifest(&manifest(
            &["memory"],
            vec![entry("db/openclaw.db", &claimed)],
        ))
        .header(b"db/openclaw.db", tar::EntryType::Regular, 4 << 20)
        .zeros(4 << 20)
        .write(&a)
        .unwrap();
    let into = dir.path().join("out");
    let r = reason(&unpack_err(&a, &into, &Limits::DEFAULT));
    assert!(r.contains("does not match its SHA-256"), "{r}");
    let w = written(&into);
    assert!(w.iter().all(|(_, len)| *len <= 4 << 20), "{w:?}");
}

#[test]
fn a_member_not_in_the_manifest_is_refused_before_it_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("extra.tar.gz");
    let cfg = b"agent: {}\n";
    RawTar::new()
        .manifest(&manifest(
            &["config"],
            vec![entry("config/config.yaml", cfg)],
        ))
        .file("config/config.yaml", cfg)
        .file("channels/evil", b"not listed")
        .write(&a)
        .unwrap();
    let into = dir.path().join("out");
    let r = reason(&unpack_err(&a, &into, &Limits::DEFAULT));
    assert!(
        r.contains("`channels/evil` is not listed in the manifest"),
        "{r}"
    );
    assert!(!into.join("channels").exists());

    // A duplicate of a listed member is refused before it overwrites the first.
    RawTar::new()
        .manifest(&manifest(
            &["config"],
            vec![entry("config/config.yaml", cfg)],
        ))
        .file("config/config.yaml", cfg)
        .file("config/config.yaml", b"agent: []\n")
        .write(&a)
        .unwrap();
    let into = dir.path().join("out2");
    let r = reason(&unpack_err(&a, &into, &Limits::DEFAULT));
    assert!(r.contains("appears twice"), "{r}");
    assert_eq!(fs::read(into.join("config/config.yaml")).unwrap(), cfg);
}

#[test]
fn a_long_name_bomb_stops_at_the_stream_budget() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("longname.tar.gz");
    // A GNU long-name entry the tar reader would read whole into memory: 100 MiB of zeros,
    // about 100 KiB compressed, before the manifest.
    RawTar::new()
        .header(b"././@LongLink", tar::EntryType::GNULongName, 100 << 20)
        .zeros(100 << 20)
        .write(&a)
        .unwrap();
    assert!(fs::metadata(&a).unwrap().len() < 1 << 20);
    let started = std::time::Instant::now();
    let r = reason(&unpack_err(&a, &dir.path().join("out"), &Limits::DEFAULT));
    assert!(r.contains("decompression bomb"), "{r}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[test]
fn a_manifest_over_the_caps_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("big.tar.gz");
    // 1 TiB declared, header agreeing.
    let mut huge = entry("db/openclaw.db", b"");
    huge.size = 1 << 40;
    RawTar::new()
        .manifest(&manifest(&["memory"], vec![huge]))
        .header(b"db/openclaw.db", tar::EntryType::Regular, 1 << 40)
        .zeros(1 << 20)
        .write(&a)
        .unwrap();
    let into = dir.path().join("out");
    let r = reason(&unpack_err(&a, &into, &Limits::DEFAULT));
    assert!(
        r.contains("declares 1.0 TiB of files; at most 64.0 GiB"),
        "{r}"
    );
    assert!(written(&into).is_empty());

    // Sizes that add up past u64 are refused, not wrapped.
    let mut a1 = entry("channels/a", b"");
    a1.size = u64::MAX;
    let mut a2 = entry("channels/b", b"");
    a2.size = 2;
    RawTar::new()
        .manifest(&manifest(&["channel_auth"], vec![a1, a2]))
        .write(&a)
        .unwrap();
    let r = reason(&unpack_err(
        &a,
        &dir.path().join("out2"),
        &Limits {
            max_total_bytes: u64::MAX,
            ..Limits::DEFAULT
        },
    ));
    assert!(r.contains("more than 16 EiB"), "{r}");

    // A manifest entry too big to read is refused on its header.
    RawTar::new()
        .header(b"MANIFEST.json", tar::EntryType::Regular, 33 << 20)
        .zeros(1 << 10)
        .write(&a)
        .unwrap();
    let r = reason(&unpack_err(&a, &dir.path().join("out3"), &Limits::DEFAULT));
    assert!(
        r.contains("its MANIFEST.json is 33.0 MiB; at most 32.0 MiB"),
        "{r}"
    );
}

#[test]
fn too_many_entries_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("many.tar.gz");
    let files: Vec<FileEntry> = (0..5)
        .map(|i| entry(&format!("channels/f{i}"), b"x"))
        .collect();
    let mut t = RawTar::new().manifest(&manifest(&["channel_auth"], files));
    for i in 0..5 {
        t = t.file(&format!("channels/f{i}"), b"x");
    }
    t.write(&a).unwrap();
    let limits = Limits {
        max_files: 3,
        ..Limits::DEFAULT
    };
    let into = dir.path().join("out");
    let r = reason(&unpack_err(&a, &into, &limits));
    assert!(
        r.contains("its manifest lists 5 files; at most 3 are accepted"),
        "{r}"
    );
    assert!(written(&into).is_empty());
    // Within the limit, the same archive is fine.
    let ok = unpack_with_limits(&a, &dir.path().join("ok"), &Limits::DEFAULT, &mut quiet());
    assert_eq!(ok.unwrap().manifest.files.len(), 5);

    // Entries no manifest counts (directories) are bounded too.
    let mut t = RawTar::new().manifest(&manifest(&[], vec![]));
    for i in 0..2100 {
        t = t.header(format!("d{i}/").as_bytes(), tar::EntryType::Directory, 0);
    }
    t.write(&a).unwrap();
    let r = reason(&unpack_err(&a, &dir.path().join("out2"), &limits));
    assert!(r.contains("entries; at most 3 files are accepted"), "{r}");
}

#[test]
fn every_listed_part_must_have_its_file() {
    let f = fixture();
    let dir = &f.layout.data_dir;
    let a = dir.join("hollow.tar.gz");
    for (part, member) in [
        ("config", "config/config.yaml"),
        ("memory", "db/openclaw.db"),
        ("sessions", "db/openclaw.db"),
    ] {
        RawTar::new()
            .manifest(&manifest(&[part], vec![]))
            .write(&a)
            .unwrap();
        let want = format!("lists the part `{part}` but not its file `{member}`");
        expect_invalid(&a, dir, &want);
        // And restore, which once turned config.yaml and openclaw.db into empty directories,
        // changes nothing.
        let e = restore(&a, &f.layout, "0.1.0", &mut quiet()).unwrap_err();
        assert!(e.to_string().contains(&want), "{e}");
        assert!(f.layout.config.as_ref().unwrap().is_file());
        assert!(f.layout.db.is_file());
        assert_eq!(
            list(&f.layout.backups).unwrap().len(),
            0,
            "no pre-restore backup"
        );
    }
    // A file for a part the manifest does not list, and unknown parts and paths.
    let cfg = b"agent: {}\n";
    RawTar::new()
        .manifest(&manifest(
            &["memory"],
            vec![
                entry("db/openclaw.db", b""),
                entry("config/config.yaml", cfg),
            ],
        ))
        .write(&a)
        .unwrap();
    expect_invalid(
        &a,
        dir,
        "lists `config/config.yaml` but not the part it belongs to",
    );
    RawTar::new()
        .manifest(&manifest(&["everything"], vec![]))
        .write(&a)
        .unwrap();
    expect_invalid(
        &a,
        dir,
        "the part `everything`, which this openclaw does not know",
    );
    RawTar::new()
        .manifest(&manifest(
            &["channel_auth"],
            vec![entry("channels/../../x", b"")],
        ))
        .write(&a)
        .unwrap();
    expect_invalid(&a, dir, "not a file an openclaw archive holds");
}

fn full_disk(_: &Path) -> io::Result<Space> {
    Ok(Space {
        bytes: 1000,
        total: 1 << 30,
        files: None,
    })
}

fn no_inodes(_: &Path) -> io::Result<Space> {
    Ok(Space {
        bytes: u64::MAX,
        total: u64::MAX,
        files: Some(10),
    })
}

#[test]
fn an_archive_that_does_not_fit_is_refused_with_what_is_needed_and_free() {
    let f = fixture();
    let c = backup(&f);
    let into = f.layout.data_dir.join("out");
    let limits = Limits {
        free_space: full_disk,
        ..Limits::DEFAULT
    };
    match unpack_with_limits(&c.path, &into, &limits, &mut quiet()) {
        Err(e @ Error::NoSpace { .. }) => {
            let text = e.to_string();
            assert!(text.contains("and 1000 B is free"), "{text}");
            assert!(text.contains("128.0 MiB left free"), "{text}");
            assert!(text.contains(&into.display().to_string()), "{text}");
        }
        other => panic!("expected NoSpace, got {other:?}"),
    }
    assert!(written(&into).is_empty());
    let limits = Limits {
        free_space: no_inodes,
        ..Limits::DEFAULT
    };
    let e = unpack_with_limits(
        &c.path,
        &f.layout.data_dir.join("out2"),
        &limits,
        &mut quiet(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("not enough free inodes"), "{e}");
    // Restore checks the same before it changes anything.
    let limits = Limits {
        free_space: full_disk,
        ..Limits::DEFAULT
    };
    let e = restore_with_limits(&c.path, &f.layout, "0.1.0", &limits, &mut quiet()).unwrap_err();
    assert!(matches!(e, Error::NoSpace { .. }), "{e}");
    assert_eq!(
        list(&f.layout.backups).unwrap().len(),
        1,
        "no pre-restore backup"
    );
}

#[test]
fn the_real_free_space_is_checked() {
    // The real statvfs of the temp dir's file system, and a manifest asking for 1 GiB more
    // than it has (the byte cap lifted so that the free-space check is the one that speaks).
    let dir = tempfile::tempdir().unwrap();
    let free = free_space(dir.path()).unwrap().bytes;
    let mut big = entry("db/openclaw.db", b"");
    big.size = free + (1 << 30);
    let a = dir.path().join("big.tar.gz");
    RawTar::new()
        .manifest(&manifest(&["memory"], vec![big]))
        .header(b"db/openclaw.db", tar::EntryType::Regular, free + (1 << 30))
        .zeros(1 << 20)
        .write(&a)
        .unwrap();
    let into = dir.path().join("out");
    let limits = Limits {
        max_total_bytes: u64::MAX,
        ..Limits::DEFAULT
    };
    let e = unpack_with_limits(&a, &into, &limits, &mut quiet()).unwrap_err();
    assert!(matches!(e, Error::NoSpace { .. }), "{e}");
    assert!(written(&into).is_empty());
}

#[test]
fn verify_leaves_nothing_in_its_scratch_dir_on_success_or_refusal() {
    let f = fixture();
    let c = backup(&f);
    let scratch = tempfile::tempdir().unwrap();
    verify(&c.path, scratch.path(), &mut quiet()).unwrap();
    let a = f.layout.data_dir.join("bomb.tar.gz");
    RawTar::new()
        .manifest(&manifest(
            &["config"],
            vec![entry("config/config.yaml", b"x")],
        ))
        .header(b"config/config.yaml", tar::EntryType::Regular, 1 << 40)
        .write(&a)
        .unwrap();
    assert!(verify(&a, scratch.path(), &mut quiet()).is_err());
    assert_eq!(fs::read_dir(scratch.path()).unwrap().count(), 0);
}

#[test]
fn garbled_and_truncated_archives_are_errors_never_panics() {
    let f = fixture();
    let c = backup(&f);
    let good = fs::read(&c.path).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let limits = Limits::DEFAULT;
    let check = |bytes: &[u8]| {
        let r = verify_reader(bytes, Path::new("input"), scratch.path(), &limits);
        assert!(r.is_err(), "accepted {} garbled bytes", bytes.len());
    };
    check(b"");
    check(b"\x1f\x8b");
    check(b"not an archive at all");
    // Truncations at a spread of offsets, including inside the gzip header and trailer.
    let step = (good.len() / 97).max(1);
    for cut in (0..good.len())
        .step_by(step)
        .chain([1, 9, 10, good.len() - 1])
    {
        check(&good[..cut]);
    }
    // Bytes flipped at pseudo-random places (seeded: the same cases every run).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..150 {
        let mut bytes = good.clone();
        for _ in 0..1 + next() % 4 {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] ^= 1 << (next() % 8);
        }
        // A flip in gzip's header padding (mtime, OS) can leave a valid archive: only the
        // absence of a panic is asserted for those.
        let _ = verify_reader(
            bytes.as_slice(),
            Path::new("input"),
            scratch.path(),
            &limits,
        );
    }
    // Uncompressed tar streams with garbage headers, gzipped so they reach the tar reader.
    for _ in 0..50 {
        let mut raw = vec![0u8; 2048];
        for b in raw.iter_mut() {
            *b = next() as u8;
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&raw).unwrap();
        check(&gz.finish().unwrap());
    }
    // The good one still passes through the same door.
    verify_reader(good.as_slice(), Path::new("input"), scratch.path(), &limits).unwrap();
    assert_eq!(fs::read_dir(scratch.path()).unwrap().count(), 0);
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[test]
fn archives_backups_dir_and_restored_files_are_private() {
    let f = fixture();
    // A backups dir an older version made world-readable.
    fs::create_dir_all(&f.layout.backups).unwrap();
    openclaw_fs::set_mode(&f.layout.backups, 0o755).unwrap();
    let c = backup(&f);
    assert_eq!(mode(&c.path), 0o600);
    assert_eq!(mode(&f.layout.backups), 0o700);
    for p in [f.layout.config.as_ref().unwrap(), &f.layout.db] {
        openclaw_fs::set_mode(p, 0o644).unwrap();
    }
    let r = restore(&c.path, &f.layout, "0.1.0", &mut quiet()).unwrap();
    assert_eq!(mode(&r.pre_restore.path), 0o600);
    assert_eq!(mode(f.layout.config.as_ref().unwrap()), 0o600);
    assert_eq!(mode(&f.layout.db), 0o600);
    assert_eq!(mode(&f.layout.channels), 0o700);
    assert_eq!(mode(&f.layout.channels.join("whatsapp")), 0o700);
    assert_eq!(mode(&f.layout.channels.join("whatsapp/creds.json")), 0o600);
}

#[cfg(unix)]
#[test]
fn a_backups_dir_outside_the_data_dir_is_made_private_but_an_existing_one_is_left_alone() {
    let f = fixture();
    let elsewhere = tempfile::tempdir().unwrap();
    let new_dir = elsewhere.path().join("new/backups");
    let layout = Layout {
        backups: new_dir.clone(),
        ..f.layout.clone()
    };
    let c = create(&layout, Include::ALL, "0.1.0", None, &mut quiet()).unwrap();
    assert_eq!(mode(&new_dir), 0o700);
    assert_eq!(mode(&c.path), 0o600);
    // A shared directory someone pointed `--out` at (think /tmp, a NAS folder) keeps its mode.
    let shared = elsewhere.path().join("shared");
    fs::create_dir(&shared).unwrap();
    openclaw_fs::set_mode(&shared, 0o755).unwrap();
    let layout = Layout {
        backups: shared.clone(),
        ..f.layout.clone()
    };
    let c = create(&layout, Include::ALL, "0.1.0", None, &mut quiet()).unwrap();
    assert_eq!(mode(&shared), 0o755);
    assert_eq!(mode(&c.path), 0o600);
}

#[test]
fn restore_syncs_everything_it_staged_and_renamed_before_the_journal_goes() {
    let f = fixture();
    let c = backup(&f);
    fsx::TRACE.with(|t| t.borrow_mut().clear());
    restore(&c.path, &f.layout, "0.1.0", &mut quiet()).unwrap();
    let trace = fsx::TRACE.with(|t| t.borrow().clone());
    let at = |event: &str| {
        trace
            .iter()
            .position(|e| e == event)
            .unwrap_or_else(|| panic!("no `{event}` in {trace:#?}"))
    };
    let last = |event: &str| {
        trace
            .iter()
            .rposition(|e| e == event)
            .unwrap_or_else(|| panic!("no `{event}` in {trace:#?}"))
    };
    let journal = at("journal written");
    let commit = at("remove journal");
    let config = f.layout.config.clone().unwrap();
    let staged_creds = format!(
        "sync file {}",
        with_suffix(&f.layout.channels, NEW)
            .join("whatsapp/creds.json")
            .display()
    );
    for staged in [
        format!("sync file {}", with_suffix(&config, NEW).display()),
        format!("sync file {}", with_suffix(&f.layout.db, NEW).display()),
        staged_creds,
        format!(
            "sync dir {}",
            with_suffix(&f.layout.channels, NEW).display()
        ),
    ] {
        assert!(
            at(&staged) < journal,
            "{staged} after the journal: {trace:#?}"
        );
    }
    let last_rename = trace
        .iter()
        .rposition(|e| e.starts_with("rename "))
        .unwrap();
    assert!(journal < last_rename && last_rename < commit);
    // Each target's directory is synced after the last rename and before the commit.
    for dir in [config.parent().unwrap(), f.layout.data_dir.as_path()] {
        let synced = last(&format!("sync dir {}", dir.display()));
        assert!(
            synced > last_rename,
            "{} not synced after the swaps",
            dir.display()
        );
        let before_commit = trace[..commit]
            .iter()
            .rposition(|e| *e == format!("sync dir {}", dir.display()));
        assert!(before_commit.is_some_and(|i| i > last_rename), "{trace:#?}");
    }
    // And the journal's removal itself is synced.
    assert!(last(&format!("sync dir {}", f.layout.data_dir.display())) > commit);
}

fn with_suffix(p: &Path, s: &str) -> PathBuf {
    restore::with_suffix(p, s)
}

#[test]
fn the_sweep_removes_leftovers_and_nothing_else() {
    let f = fixture();
    let c = backup(&f);
    let data = &f.layout.data_dir;
    let config = f.layout.config.clone().unwrap();
    let dirs = [
        data.join(".restore-scratch-20260101T000000000Z-p1-0"),
        data.join(".restore-20250101T000000000Z"),
        data.join(".verify-20250101T000000000Z"),
        f.layout.backups.join(".staging-20260101T000000000Z-p1-0"),
        with_suffix(&f.layout.channels, NEW),
        with_suffix(&f.layout.channels, OLD),
    ];
    let files = [
        data.join(".restore-journal.json.tmp"),
        with_suffix(&config, NEW),
        with_suffix(&config, OLD),
        with_suffix(&f.layout.db, NEW),
        with_suffix(&f.layout.db, OLD),
        with_suffix(&f.layout.db, "-wal.pre-restore"),
        f.layout
            .backups
            .join(".openclaw-backup-20260101T000000000Z.tar.gz.p1-0.partial"),
    ];
    for d in &dirs {
        fs::create_dir_all(d.join("inner")).unwrap();
        fs::write(d.join("inner/file"), b"x").unwrap();
    }
    for p in &files {
        fs::write(p, b"left over").unwrap();
    }
    let swept = sweep(&f.layout).unwrap();
    assert!(!swept.rolled_back && !swept.backups_busy);
    assert!(swept.failed.is_empty(), "{:?}", swept.failed);
    for p in dirs.iter().chain(&files) {
        assert!(!p.exists(), "{} is still there", p.display());
        assert!(swept.removed.contains(p), "{} not reported", p.display());
    }
    // The live data and the archive are untouched, and still a valid restore source.
    assert_eq!(list(&f.layout.backups).unwrap().len(), 1);
    verify(&c.path, data, &mut quiet()).unwrap();
    assert!(config.is_file() && f.layout.db.is_file());
    assert!(f.layout.channels.join("whatsapp/creds.json").is_file());
    assert!(data.join("openclaw.db").is_file());
    assert!(sweep(&f.layout).unwrap().removed.is_empty(), "only once");
}

#[test]
fn the_sweep_rolls_an_interrupted_restore_back_before_removing_anything() {
    let f = fixture();
    let c = backup(&f);
    fs::write(f.layout.config.as_ref().unwrap(), "agent:\n  name: Two\n").unwrap();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = restore(&c.path, &f.layout, "0.1.0", &mut |s, done, _| {
            if s == Stage::Swap && done == 2 {
                panic!("killed");
            }
        });
    }));
    assert!(result.is_err());
    // The `.pre-restore` files are the only copy of the old data now: they must be put back,
    // not swept.
    assert!(with_suffix(f.layout.config.as_ref().unwrap(), OLD).exists());
    let swept = sweep(&f.layout).unwrap();
    assert!(swept.rolled_back);
    assert_eq!(
        fs::read_to_string(f.layout.config.as_ref().unwrap()).unwrap(),
        "agent:\n  name: Two\n"
    );
    assert!(!f.layout.data_dir.join(JOURNAL).exists());
    for e in fs::read_dir(&f.layout.data_dir).unwrap() {
        let n = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            !n.contains(".restore") && !n.contains(".pre-restore"),
            "left: {n}"
        );
    }
}

#[test]
fn the_sweep_leaves_the_backups_dir_alone_while_a_create_writes_there() {
    let f = fixture();
    backup(&f);
    let partial = f
        .layout
        .backups
        .join(".openclaw-backup-20260101T000000000Z.tar.gz.p1-0.partial");
    fs::write(&partial, b"being written").unwrap();
    let lock = sweep::BackupsDirLock::shared(&f.layout.backups).unwrap();
    let swept = sweep(&f.layout).unwrap();
    assert!(swept.backups_busy);
    assert!(partial.exists());
    // Other creates are not held up by one another.
    backup(&f);
    drop(lock);
    let swept = sweep(&f.layout).unwrap();
    assert!(!swept.backups_busy);
    assert!(!partial.exists());
}

#[test]
fn the_sweep_removes_dead_verify_scratch_from_the_temp_dir_but_not_live_ones() {
    // A temp dir of its own: the sweeps of tests running alongside look at the real one.
    let tmp = tempfile::tempdir().unwrap();
    let tmp = tmp.path();
    let dead = tmp.join(format!("{}dead", unpack::VERIFY_PREFIX));
    let young = tmp.join(format!("{}young", unpack::VERIFY_PREFIX));
    let other = tmp.join("someone-elses");
    for d in [&dead, &young, &other] {
        fs::create_dir(d).unwrap();
    }
    let live = fsx::Scratch::new_in(tmp, unpack::VERIFY_PREFIX).unwrap();
    let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for d in [&dead, &other, &live.path().to_owned()] {
        File::open(d).unwrap().set_modified(an_hour_ago).unwrap();
    }
    let mut swept = sweep::Swept::default();
    sweep::sweep_temp_dir(tmp, &mut swept);
    assert_eq!(swept.removed, std::slice::from_ref(&dead));
    assert!(!dead.exists());
    assert!(live.path().exists(), "a scratch its process holds stays");
    assert!(young.exists(), "a scratch made a moment ago stays");
    assert!(other.exists(), "not ours");
}
