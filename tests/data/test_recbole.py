"""The RecBole loader reads the fields a dataset declares: files written here in the shapes RecBole documents
(ml-1m, ml-100k, Amazon, LLMRank's sequential split)."""

import pytest

from prefscribe.data import load
from prefscribe.errors import InputError

PER_ROW_INTER = ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                 "1\t1\t5\t978300760\n1\t2\t3\t978302109\n1\t3\t4\t978302200\n")


def write(folder, name, text):
    (folder / name).write_text(text, encoding="utf-8")
    return folder / name


def test_ml_1m_item_file_movie_title_year_and_genres(tmp_path):
    header = "item_id:token\tmovie_title:token_seq\trelease_year:token\tgenre:token_seq\n"
    write(tmp_path, "ml-1m.item", header + "1\tToy Story\t1995\tAnimation Children's Comedy\n"
                                           "2\tJumanji\t1995\tAdventure Children's Fantasy\n"
                                           "3\tHeat\t1995\tAction Crime Thriller\n"
          + "".join(f"{i}\tFiller {i}\t2000\tDrama\n" for i in range(100, 110)))
    write(tmp_path, "ml-1m.inter", PER_ROW_INTER)
    record, = load("amazon", tmp_path / "ml-1m.inter")
    assert [h.chosen for h in record.history] == ["Toy Story (1995) — genre: Animation, Children's, Comedy",
                                                  "Jumanji (1995) — genre: Adventure, Children's, Fantasy"]
    assert record.target.chosen == "Heat (1995) — genre: Action, Crime, Thriller"
    assert record.target.rejected.startswith("Filler ")
    assert record.meta["item_text"] == {"text_field": "movie_title", "item_fields": ["release_year", "genre"]}
    # The options pick the fields: the title alone, or only some of them.
    record, = load("amazon", tmp_path / "ml-1m.inter", item_fields="none")
    assert record.target.chosen == "Heat"
    record, = load("amazon", tmp_path / "ml-1m.inter", item_fields="genre")
    assert record.target.chosen == "Heat — genre: Action, Crime, Thriller"


def test_ml_100k_item_file_with_class_and_a_vector(tmp_path):
    header = "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\temb:float_seq\n"
    write(tmp_path, "ml-100k.item", header + "1\tToy Story\t1995\tAnimation Comedy\t0.1 0.2\n"
                                             "2\tGoldenEye\t\tAction\t0.3 0.4\n"
                                             "3\tFour Rooms\t1995\tThriller\t0.5 0.6\n"
          + "".join(f"{i}\tFiller {i}\t1990\tDrama\t0 0\n" for i in range(100, 110)))
    write(tmp_path, "ml-100k.inter", PER_ROW_INTER)
    record, = load("amazon", tmp_path / "ml-100k.inter")
    # An empty field is left out; the vector is never text.
    assert [h.chosen for h in record.history] == ["Toy Story (1995) — class: Animation, Comedy",
                                                  "GoldenEye — class: Action"]
    # Tags: the class tokens and the decade, for the measured writer to count.
    assert [h.meta["tags"] for h in record.history] == [["Animation", "Comedy", "1990s"], ["Action"]]
    assert all(h.meta["rejected_tags"] == ["Drama", "1990s"] for h in record.history)
    with pytest.raises(InputError, match="float_seq") as err:
        load("amazon", tmp_path / "ml-100k.inter", item_fields="class,emb")
    assert (err.value.line, err.value.field) == (1, "emb")


def test_amazon_item_file_with_title_token_floats_and_categories(tmp_path):
    header = ("item_id:token\ttitle:token\tsales_type:token\tsales_rank:float\tcategories:token_seq\t"
              "price:float\tbrand:token\n")
    rows = ["A1\tSuper Mario Odyssey\tVideo Games\t12.0\tNintendo-Switch Games\t59.99\tNintendo",
            "A2\tZelda\tVideo Games\t3.0\tGames\t69.99\tNintendo",
            "A3\tHalo\tVideo Games\t40.0\tXbox Games\t19.99\tMicrosoft"]
    write(tmp_path, "Games.item", header + "\n".join(rows) + "\n"
          + "".join(f"F{i}\tFiller {i}\tVideo Games\t1.0\tGames\t1.0\tAcme\n" for i in range(10)))
    write(tmp_path, "Games.inter", "user_id:token\titem_id:token\ttimestamp:float\nu\tA1\t1\nu\tA2\t2\nu\tA3\t3\n")
    record, = load("amazon", tmp_path / "Games.inter")
    assert record.target.chosen == "Halo — categories: Xbox, Games; brand: Microsoft"
    record, = load("amazon", tmp_path / "Games.inter", item_fields="price,brand")
    assert record.target.chosen == "Halo — price: 19.99; brand: Microsoft"


def test_sequential_split_with_a_named_text_field(tmp_path):
    write(tmp_path, "S.item", "item_id:token\tproduct_name:token_seq\tgenre:token_seq\n"
          + "".join(f"{i}\tProduct {i}\tSport\n" for i in range(20)))
    write(tmp_path, "S.test.inter", "user_id:token\titem_id_list:token_seq\titem_id:token\n7\t1 2 3\t4\n")
    with pytest.raises(InputError, match="text_field") as err:
        load("amazon", tmp_path)
    assert (err.value.path, err.value.line) == (str(tmp_path / "S.item"), 1)
    record, = load("amazon", tmp_path, text_field="product_name")
    assert [h.chosen for h in record.history] == [f"Product {i} — genre: Sport" for i in (1, 2, 3)]
    assert record.target.chosen == "Product 4 — genre: Sport"
    with pytest.raises(InputError, match="not a token or token_seq field") as err:
        load("amazon", tmp_path, text_field="price")
    assert err.value.field == "price"


def test_header_cells_must_declare_a_recbole_type(tmp_path):
    write(tmp_path, "B.item", "item_id:token\ttitle:text\n1\tOne\n")
    write(tmp_path, "B.inter", "user_id:token\titem_id:token\nu\t1\n")
    with pytest.raises(InputError, match="name:type") as err:
        load("amazon", tmp_path / "B.inter")
    assert (err.value.path, err.value.line, err.value.field) == (str(tmp_path / "B.item"), 1, "title")
    write(tmp_path, "B.item", "item_id:token\ttitle\n1\tOne\n")
    with pytest.raises(InputError, match="name:type"):
        load("amazon", tmp_path / "B.inter")
