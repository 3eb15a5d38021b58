"""Downloading the Online Retail workbooks (both releases), from a local HTTP server and file:// URLs
(no network needed)."""

from __future__ import annotations

import functools
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from shoprec.cli.main import main
from shoprec.data.adapters import DATASETS, load_online_retail
from shoprec.data.adapters.download import XLSX_NAME, XLSX_NAME_II, download, download_online_retail
from shoprec.errors import ShoprecError
from tinyretail import FIRST_RELEASE, KEPT, SECOND_RELEASE, SHEETS, dropped, write_release

RETAIL = "online-retail-2010-2011/online_retail.parquet"


def make_zip(path: Path, members: dict[str, bytes | Path]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            if isinstance(content, Path):
                archive.write(content, name)
            else:
                archive.writestr(name, content)
    return path


def leftovers(folder: Path) -> list[str]:
    """Temporary files a download might leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def published_zip(shared_data, tmp_path_factory) -> tuple[Path, Path]:
    """A zip shaped like the UCI one, holding 500 rows of the real data; and those rows as parquet."""
    folder = tmp_path_factory.mktemp("uci")
    rows = pd.read_parquet(shared_data / RETAIL).iloc[:500]
    rows.to_parquet(folder / "rows.parquet", index=False)
    rows.to_excel(folder / XLSX_NAME, index=False, engine="openpyxl")
    return make_zip(folder / "online+retail.zip", {XLSX_NAME: folder / XLSX_NAME}), folder / "rows.parquet"


@pytest.fixture
def tiny_xlsx(tmp_path) -> Path:
    """A two-row workbook with the Online Retail columns (no shared data needed)."""
    frame = pd.DataFrame(
        {
            "InvoiceNo": ["536365", "536366"],
            "StockCode": ["85123A", "71053"],
            "Description": ["HEART", "LANTERN"],
            "Quantity": [6, 2],
            "InvoiceDate": pd.to_datetime(["2010-12-01 08:26", "2010-12-01 09:00"]),
            "UnitPrice": [2.55, 3.39],
            "CustomerID": [17850.0, 13047.0],
            "Country": ["UK", "UK"],
        }
    )
    path = tmp_path / "source" / XLSX_NAME
    path.parent.mkdir()
    frame.to_excel(path, index=False)
    return path


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_folder(tmp_path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server (base URL, served folder), so the HTTP code paths run without a network."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        server.server_close()


def test_download_over_http(http_folder, tiny_xlsx, tmp_path):
    base, folder = http_folder
    make_zip(folder / "online+retail.zip", {XLSX_NAME: tiny_xlsx})
    path = download_online_retail(tmp_path / "data", url=f"{base}/online+retail.zip", progress=False)
    ds = load_online_retail(path, progress=False)
    assert (ds.n_users, ds.n_items, len(ds)) == (2, 2, 2)


def test_download_http_error_names_the_status(http_folder, tmp_path):
    base, _ = http_folder
    with pytest.raises(ShoprecError, match=r"could not download http://.*/gone\.zip: the server answered HTTP 404"):
        download_online_retail(tmp_path / "data", url=f"{base}/gone.zip", progress=False)
    assert leftovers(tmp_path / "data") == []


@pytest.mark.shared_data
def test_download_from_file_url_then_load(published_zip, tmp_path):
    archive, rows = published_zip
    dest = tmp_path / "data"
    path = download_online_retail(dest, url=archive.as_uri(), progress=False)
    assert path == dest / XLSX_NAME and path.is_file()
    assert leftovers(dest) == []
    got, expected = load_online_retail(path, progress=False), load_online_retail(rows)
    assert (got.n_users, got.n_items, len(got)) == (expected.n_users, expected.n_items, len(expected))
    assert got.n_users > 5 and len(got) > 300
    assert got.report.rows_read["interactions"] == 500 == len(got) + got.report.dropped_total("interactions")
    assert got.report.dropped == expected.report.dropped


def test_download_reuses_an_existing_file_unless_forced(tiny_xlsx, tmp_path):
    dest = tmp_path / "data"
    first = download_online_retail(dest, url=str(tiny_xlsx), progress=False)  # a plain path to the .xlsx itself
    stamp = first.stat().st_mtime_ns
    broken = (tmp_path / "missing.zip").as_uri()
    assert download_online_retail(dest, url=broken, progress=False) == first  # not fetched again
    assert first.stat().st_mtime_ns == stamp
    with pytest.raises(ShoprecError, match="could not download"):
        download_online_retail(dest, url=broken, force=True, progress=False)
    assert first.stat().st_mtime_ns == stamp and leftovers(dest) == []  # a failed download leaves the old file


def test_download_broken_url_says_what_where_and_what_to_do(tmp_path):
    url = (tmp_path / "nowhere" / "online+retail.zip").as_uri()
    with pytest.raises(ShoprecError) as info:
        download_online_retail(tmp_path / "data", url=url, progress=False)
    text = str(info.value)
    assert "could not download" in text and url in text and "Check your connection" in text and "--url" in text
    assert leftovers(tmp_path / "data") == []


def test_download_refused_connection_is_a_shoprec_error(tmp_path):
    with pytest.raises(ShoprecError, match=r"could not download http://127\.0\.0\.1:9/x\.zip.*Check your connection"):
        download_online_retail(tmp_path, url="http://127.0.0.1:9/x.zip", progress=False)


def test_download_zip_without_workbook(tmp_path):
    archive = make_zip(tmp_path / "other.zip", {"readme.txt": b"hello", "data.csv": b"a,b\n1,2\n"})
    dest = tmp_path / "data"
    with pytest.raises(ShoprecError, match=r"holds no \.xlsx workbook \(found: readme\.txt, data\.csv\)"):
        download_online_retail(dest, url=archive.as_uri(), progress=False)
    assert list(dest.iterdir()) == []


def test_download_not_a_zip(tmp_path):
    page = tmp_path / "page.html"
    page.write_text("<html>maintenance</html>")
    with pytest.raises(ShoprecError, match="is not a zip archive or an .xlsx workbook"):
        download_online_retail(tmp_path / "data", url=page.as_uri(), progress=False)


def test_download_workbook_with_wrong_columns(tmp_path):
    sheet = tmp_path / "other.xlsx"
    pd.DataFrame({"order": [1], "sku": ["a"]}).to_excel(sheet, index=False)
    archive = make_zip(tmp_path / "other.zip", {"Other.xlsx": sheet})
    dest = tmp_path / "data"
    with pytest.raises(ShoprecError, match="not the Online Retail data: missing Online Retail column 'InvoiceNo'"):
        download_online_retail(dest, url=archive.as_uri(), progress=False)
    assert list(dest.iterdir()) == []


def test_datasets_registry_describes_online_retail():
    info = DATASETS["online-retail"]
    assert info["url"].startswith("https://archive.ics.uci.edu/") and info["url"].endswith(".zip")
    assert info["license"] == "CC BY 4.0" and "10.24432/C5BW33" in info["citation"]
    assert info["format"] == "online-retail" and info["file"] == XLSX_NAME


def test_download_by_name(tiny_xlsx, tmp_path):
    path = download("online-retail", tmp_path / "data", url=tiny_xlsx.as_uri(), progress=False)
    assert path == tmp_path / "data" / XLSX_NAME and path.is_file()
    with pytest.raises(ShoprecError, match="unknown dataset 'movielens'. Downloadable datasets: online-retail"):
        download("movielens", tmp_path / "data")


# ---------------------------------------------------------------- Online Retail II
@pytest.fixture
def release_ii_zip(tmp_path) -> Path:
    """A zip shaped like the UCI Online Retail II one: online_retail_II.xlsx, one sheet per year."""
    workbook = write_release(tmp_path / "made", SECOND_RELEASE, ".xlsx")
    return make_zip(tmp_path / "online+retail+ii.zip", {"online_retail_II.xlsx": workbook})


def test_download_online_retail_ii_over_http_reads_both_sheets(http_folder, release_ii_zip, tmp_path):
    base, folder = http_folder
    (folder / release_ii_zip.name).write_bytes(release_ii_zip.read_bytes())
    dest = tmp_path / "data"
    path = download("online-retail-ii", dest, url=f"{base}/{release_ii_zip.name}", progress=False)
    assert path == dest / XLSX_NAME_II and leftovers(dest) == []
    ds = load_online_retail(path, progress=False)
    assert len(ds) == KEPT["both"] and {r: n for (_, r), n in ds.report.dropped.items()} == dropped(SECOND_RELEASE)
    assert f"'{SHEETS[0]}' (10 rows), '{SHEETS[1]}' (6 rows)" in " ".join(ds.report.notes)


def test_cli_downloads_online_retail_ii(release_ii_zip, tmp_path, capsys):
    dest = tmp_path / "data"
    assert main(["datasets", "download", "online-retail-ii", "--dest", str(dest), "--url", str(release_ii_zip)]) == 0
    assert f"downloaded online-retail-ii to {dest / XLSX_NAME_II}" in capsys.readouterr().out


def test_download_online_retail_ii_refuses_the_first_release(tmp_path):
    first = write_release(tmp_path / "made", FIRST_RELEASE, ".xlsx")
    archive = make_zip(tmp_path / "online+retail.zip", {XLSX_NAME: first})
    dest = tmp_path / "data"
    with pytest.raises(ShoprecError) as info:
        download("online-retail-ii", dest, url=archive.as_uri(), progress=False)
    text = str(info.value)
    assert "is not the Online Retail II data: it has the columns of Online Retail, not of Online Retail II" in text
    assert "Pass --url to the Online Retail II zip" in text and list(dest.iterdir()) == []


def test_datasets_registry_describes_online_retail_ii():
    info = DATASETS["online-retail-ii"]
    assert info["url"] == "https://archive.ics.uci.edu/static/public/502/online+retail+ii.zip"
    assert info["license"] == "CC BY 4.0" and "10.24432/C5CG6D" in info["citation"]
    assert info["format"] == "online-retail" and info["file"] == XLSX_NAME_II
