//! The server's resident memory (issue 13: under 100 MB with 1,000,000 keys on SQLite).

use crate::helpers::spawn_app;

/// With THP on `madvise` (the usual default), a mapping marked `MADV_HUGEPAGE` (`hg` in
/// its `VmFlags`) is what khugepaged fills: any 2 MiB of it holding one live page
/// becomes wholly resident. mimalloc marks its 1 GiB arena so unless built with
/// `no_thp`; that was 56 of the server's 121 MB after the keys_page bench.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn the_server_asks_for_no_transparent_huge_pages() {
    let app = spawn_app().await;
    // A page and a login make the server allocate on its worker and blocking threads.
    app.admin().await.get("/channels").await.assert_status(200);
    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", app.pid())).unwrap();
    let mut mapping = "";
    for line in smaps.lines() {
        // A mapping's first line starts with its address range; its fields with `Name:`.
        if line
            .split_whitespace()
            .next()
            .is_some_and(|t| !t.ends_with(':'))
        {
            mapping = line;
        }
        if let Some(flags) = line.strip_prefix("VmFlags:") {
            assert!(
                !flags.split_whitespace().any(|f| f == "hg"),
                "{mapping} is marked for transparent huge pages"
            );
        }
    }
}
