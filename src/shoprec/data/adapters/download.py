"""Fetch public benchmark data: the UCI Online Retail workbooks (both releases), with urllib only.

Downloads go to a temporary file beside the target and are renamed into place only once they
are complete and verified, so an interrupted download never leaves a half-written file behind.

>>> path = download_online_retail("data/")   # doctest: +SKIP
>>> path.name                                # doctest: +SKIP
'Online Retail.xlsx'
>>> download("online-retail-ii", "data/").name  # doctest: +SKIP
'online_retail_II.xlsx'
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from shoprec.data.adapters.retail_files import FIRST_RELEASE, SECOND_RELEASE, Layout, check_columns, xlsx_columns
from shoprec.errors import DataError, ShoprecError

DEFAULT_URL = "https://archive.ics.uci.edu/static/public/352/online+retail.zip"
XLSX_NAME = "Online Retail.xlsx"
URL_II = "https://archive.ics.uci.edu/static/public/502/online+retail+ii.zip"
XLSX_NAME_II = "online_retail_II.xlsx"
CHUNK = 1 << 20
NETWORK_FIX = "Check your connection, or pass --url to a local copy (a path or file:// URL of the zip or the .xlsx)"

DATASETS: dict[str, dict[str, str]] = {
    "online-retail": {
        "title": "UCI Online Retail: transactions of a UK online gift shop, 2010-12-01 to 2011-12-09",
        "url": DEFAULT_URL,
        "file": XLSX_NAME,
        "format": "online-retail",
        "size": "about 23 MB (zip of one .xlsx), 541,909 invoice lines",
        "license": "CC BY 4.0",
        "citation": "Chen, D. (2015). Online Retail [Dataset]. UCI Machine Learning Repository. "
        "https://doi.org/10.24432/C5BW33",
        "homepage": "https://archive.ics.uci.edu/dataset/352/online+retail",
    },
    "online-retail-ii": {
        "title": "UCI Online Retail II: the same shop, 2009-12-01 to 2011-12-09, one sheet per year",
        "url": URL_II,
        "file": XLSX_NAME_II,
        "format": "online-retail",
        "size": "zip of one .xlsx (about 45 MB); 1,067,371 invoice lines in sheets 'Year 2009-2010' and "
        "'Year 2010-2011', which both hold 2010-12-01 to 2010-12-09",
        "license": "CC BY 4.0",
        "citation": "Chen, D. (2019). Online Retail II [Dataset]. UCI Machine Learning Repository. "
        "https://doi.org/10.24432/C5CG6D",
        "homepage": "https://archive.ics.uci.edu/dataset/502/online+retail+ii",
    },
}
"""Public datasets shoprec can download: name -> url, file, loader format, license, citation."""


def _as_url(url: str) -> str:
    """A plain local path becomes a ``file://`` URL, so ``--url ~/Downloads/online+retail.zip`` works."""
    if "://" not in url:
        return Path(url).expanduser().resolve().as_uri()
    return url


def _temp_path(folder: Path, prefix: str, suffix: str) -> Path:
    """A new empty file in ``folder`` (same file system as the target, so the final rename is atomic)."""
    handle, name = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=suffix)
    os.close(handle)
    return Path(name)


def fetch(url: str, dest_dir: Path, progress: bool = True) -> Path:
    """Stream ``url`` into a temporary file in ``dest_dir``; network failures become ShoprecError."""
    what = f"could not download {url}"
    tmp = _temp_path(dest_dir, ".download-", ".part")
    try:
        with tmp.open("wb") as out, urllib.request.urlopen(_as_url(url), timeout=60) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            with tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=f"downloading {url.rsplit('/', 1)[-1]}",
                disable=not progress,
            ) as bar:
                received = 0
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        if total is not None and received < total:
            raise ShoprecError(f"{what}: the transfer stopped after {received:,} of {total:,} bytes. {NETWORK_FIX}")
    except urllib.error.HTTPError as err:
        tmp.unlink(missing_ok=True)
        raise ShoprecError(f"{what}: the server answered HTTP {err.code} {err.reason}. {NETWORK_FIX}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as err:
        tmp.unlink(missing_ok=True)
        reason = getattr(err, "reason", None) or err
        raise ShoprecError(f"{what}: {reason}. {NETWORK_FIX}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def _is_xlsx(archive: zipfile.ZipFile) -> bool:
    names = set(archive.namelist())
    return "[Content_Types].xml" in names and any(n.startswith("xl/") for n in names)


def extract_xlsx(download: Path, target: Path, url: str) -> Path:
    """Copy the workbook out of the downloaded zip (the member named like ``target``, else the first
    .xlsx; or the download itself when it is the workbook) into a temporary file beside ``target``;
    the caller renames it into place."""
    try:
        archive = zipfile.ZipFile(download)
    except zipfile.BadZipFile:
        raise ShoprecError(f"the file from {url} is not a zip archive or an .xlsx workbook. {NETWORK_FIX}") from None
    out = _temp_path(target.parent, ".extract-", ".xlsx")
    try:
        with archive:
            if _is_xlsx(archive):
                shutil.copyfile(download, out)
                return out
            members = [n for n in archive.namelist() if n.lower().endswith(".xlsx") and "__MACOSX" not in n]
            if not members:
                found = ", ".join(archive.namelist()[:8]) or "nothing"
                raise ShoprecError(
                    f"the archive from {url} holds no .xlsx workbook (found: {found}). "
                    f"Pass --url to the Online Retail zip from the UCI archive"
                )
            member = next((m for m in members if Path(m).name == target.name), members[0])
            with archive.open(member) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return out


def _check_release(path: Path, name: str, layout: Layout) -> None:
    """A DataError unless the workbook's first sheet has ``layout``'s columns."""
    found = check_columns(xlsx_columns(path), name)
    if found != layout:
        raise DataError(f"it has the columns of {found.release}, not of {layout.release}", file=name)


def verify_xlsx(path: Path, url: str, layout: Layout = FIRST_RELEASE, name: str = XLSX_NAME) -> None:
    """Check the workbook opens and has the columns of the release ``layout``."""
    try:
        _check_release(path, name, layout)
    except DataError as err:
        raise ShoprecError(
            f"the workbook from {url} is not the {layout.release} data: {err.problem}. "
            f"Pass --url to the {layout.release} zip from the UCI archive"
        ) from None


def download_online_retail(
    dest_dir: str | Path, url: str = DEFAULT_URL, force: bool = False, progress: bool = True
) -> Path:
    """Download the UCI Online Retail zip, extract ``Online Retail.xlsx`` into ``dest_dir``, check
    its columns and return its path. An existing workbook is reused unless ``force``.

    ``url`` may point at a mirror or a local copy (path or ``file://``) of the zip or the .xlsx.
    """
    return download_workbook(dest_dir, url, XLSX_NAME, FIRST_RELEASE, force=force, progress=progress)


def download_online_retail_ii(
    dest_dir: str | Path, url: str = URL_II, force: bool = False, progress: bool = True
) -> Path:
    """Download the UCI Online Retail II zip, extract ``online_retail_II.xlsx`` (two sheets, one per
    year) into ``dest_dir``, check its columns and return its path; as :func:`download_online_retail`."""
    return download_workbook(dest_dir, url, XLSX_NAME_II, SECOND_RELEASE, force=force, progress=progress)


def download_workbook(
    dest_dir: str | Path, url: str, file_name: str, layout: Layout, force: bool = False, progress: bool = True
) -> Path:
    """Download the zip (or .xlsx) at ``url``, extract workbook ``file_name`` into ``dest_dir``,
    check it has ``layout``'s columns and return its path. An existing workbook is reused unless ``force``."""
    dest = Path(dest_dir).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / file_name
    if target.exists() and not force:
        try:
            _check_release(target, str(target), layout)
        except DataError as err:
            raise ShoprecError(
                f"{err}. The existing file looks broken: download it again with force=True (CLI: --force)"
            ) from None
        return target
    download = fetch(url, dest, progress=progress)
    try:
        workbook = extract_xlsx(download, target, url)
    finally:
        download.unlink(missing_ok=True)
    try:
        verify_xlsx(workbook, url, layout, file_name)
        workbook.chmod(0o644)  # mkstemp makes owner-only files; the data is public
        os.replace(workbook, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            workbook.unlink()
    return target


def download(
    name: str, dest_dir: str | Path, url: str | None = None, force: bool = False, progress: bool = True
) -> Path:
    """Download the public dataset ``name`` (a key of :data:`DATASETS`) into ``dest_dir``; returns
    the path to load with :func:`shoprec.data.adapters.load_dataset`. ``url=None`` uses the
    dataset's published address."""
    downloaders = {"online-retail": download_online_retail, "online-retail-ii": download_online_retail_ii}
    if name not in downloaders:
        raise ShoprecError(f"unknown dataset {name!r}. Downloadable datasets: {', '.join(DATASETS)}")
    return downloaders[name](dest_dir, url=url or DATASETS[name]["url"], force=force, progress=progress)
