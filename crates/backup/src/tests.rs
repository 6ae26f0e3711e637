use super::*;
use openclaw_store::Store;

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
            .starts_with(".verify-")
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

fn manifest_for(files: &[(&str, &[u8])], format_version: u32) -> Vec<u8> {
    let m = Manifest {
        format_version,
        app_version: "9.9.9".into(),
        created_at: "2026-01-01T00:00:00Z".into(),
        parts: vec!["config".into()],
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
