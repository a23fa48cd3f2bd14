"""iNaturalist 2018 on small generated stand-ins of its real files (split files + JSON annotation)."""

import json

import pytest

from _cli import run_cli
from _data_helpers import inat_categories, write_inaturalist
from lt_bench.data import load_dataset, shot_groups
from lt_bench.data.prompts import fill, get_templates
from lt_bench.errors import LTBenchError

# many (> 100), medium (20..100) and few (< 20) classes, as the real profile (1000..2)
COUNTS = [150, 120, 60, 25, 12, 5, 2]


@pytest.fixture
def inat(tmp_path):
    root = tmp_path / "inat"
    lines = write_inaturalist(root, COUNTS)
    return root, lines


def test_counts_splits_and_groups(inat):
    root, lines = inat
    ds = load_dataset("inaturalist2018", root=root)
    assert ds.num_classes == len(COUNTS)
    assert set(ds.splits) == {"train", "test"}  # no val: selection holds out a slice of train
    assert len(ds.split("train")) == sum(COUNTS) and len(ds.split("test")) == 3 * len(COUNTS)
    assert list(ds.train_counts) == COUNTS
    g = shot_groups(ds.train_counts)
    assert (g["many"].sum(), g["medium"].sum(), g["few"].sum()) == (2, 2, 3)
    path, label = lines["train"][0].rsplit(" ", 1)
    assert ds.split("train").ids[0] == path and ds.split("train").labels[0] == int(label)
    assert ds.split("train").root == root


def test_class_names_by_category_id_not_sorted(inat):
    """categories.json lists ids out of order; class c must get the name of category id c."""
    root, _ = inat
    ds = load_dataset("inaturalist2018", root=root)
    by_id = {c["id"]: c["name"] for c in inat_categories(len(COUNTS))}
    assert ds.classnames == [by_id[i] for i in range(len(COUNTS))]
    assert ds.classnames != sorted(by_id.values())  # the pitfall this guards against


@pytest.mark.parametrize("annotation", ["train2018", "val2018"])
def test_categories_of_the_competition_json(tmp_path, annotation):
    root = tmp_path / "inat"
    write_inaturalist(root, COUNTS, annotation=annotation)
    ds = load_dataset("inaturalist2018", root=root)
    assert ds.classnames[3] == {c["id"]: c["name"] for c in inat_categories(len(COUNTS))}[3]


def test_splits_dir_and_annotation_option(tmp_path):
    splits = tmp_path / "splits"
    write_inaturalist(splits, COUNTS)
    (tmp_path / "images").mkdir()
    ann = tmp_path / "elsewhere.json"
    (splits / "categories.json").rename(ann)
    with pytest.raises(LTBenchError, match="--option annotations=FILE"):
        load_dataset("inaturalist2018", root=tmp_path / "images", splits_dir=splits)
    ds = load_dataset("inaturalist2018", root=tmp_path / "images", splits_dir=splits, annotations=str(ann))
    assert ds.num_classes == len(COUNTS)


def test_species_templates(inat):
    root, _ = inat
    ds = load_dataset("inaturalist2018", root=root)
    assert fill(get_templates("species"), ds.classnames[0]) == [f"a photo of a {ds.classnames[0]}, a type of species."]
    assert fill(get_templates("simple"), "x") == ["a photo of a x."]


def _error(root, **options) -> str:
    with pytest.raises(LTBenchError) as e:
        load_dataset("inaturalist2018", root=root, **options)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_label_outside_categories(inat):
    root, lines = inat
    f = root / "iNaturalist18_train.txt"
    text = f.read_text().splitlines()
    text[4] = text[4].rsplit(" ", 1)[0] + " 7"
    f.write_text("\n".join(text) + "\n")
    msg = _error(root)
    assert str(f) in msg and "line 5" in msg and "label 7" in msg and "categories.json" in msg


def test_annotation_without_categories(inat):
    root, _ = inat
    (root / "categories.json").write_text(json.dumps({"images": [], "annotations": []}))
    msg = _error(root)
    assert "categories.json" in msg and "no `categories`" in msg


def test_category_id_missing(inat):
    root, _ = inat
    cats = [c for c in inat_categories(len(COUNTS)) if c["id"] != 2]
    cats.append({"id": 99, "name": "Stray species"})
    (root / "categories.json").write_text(json.dumps(cats))
    msg = _error(root)
    assert "categories.json" in msg and "category id 2 is missing" in msg


def test_numbers_only_names_refused(inat):
    root, _ = inat
    (root / "categories.json").write_text(json.dumps([{"id": i, "name": str(i)} for i in range(len(COUNTS))]))
    assert "by number only" in _error(root)


def test_2017_split_files_refused(tmp_path):
    root = tmp_path / "inat17"
    write_inaturalist(root, COUNTS, year=2017)
    msg = _error(root)
    assert "iNaturalist18_train.txt line 1" in msg and "2017" in msg


def test_2017_annotation_refused(inat):
    root, _ = inat
    (root / "categories.json").write_text(json.dumps([{"id": i, "name": f"s{i}"} for i in range(5089)]))
    assert "5089 categories" in _error(root)


def test_missing_annotation_names_option(tmp_path):
    root = tmp_path / "inat"
    write_inaturalist(root, COUNTS)
    (root / "categories.json").unlink()
    msg = _error(root)
    assert "categories.json" in msg and "--option annotations=FILE" in msg


def test_cli_datasets_counts_groups_and_verify(tmp_path):
    root = tmp_path / "inat"
    write_inaturalist(root, [3, 2, 2], test_per_class=1, images=True)
    r = run_cli("datasets", "--dataset", "inaturalist2018", "--root", root, "--verify", "--json")
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout)
    assert s["shot_groups"] == {"many": 0, "medium": 0, "few": 3}
    r = run_cli("datasets")
    assert "inaturalist2018" in r.stdout and "cifar10_lt" in r.stdout
