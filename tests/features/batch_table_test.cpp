// Batch values and reference tables on their own: as-of semantics against a
// brute force on random versions, reloads while readers run, bad files, and
// table upserts and deletes at their times.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <map>
#include <random>
#include <thread>

#include <fmt/format.h>

#include "millrace/features/batch_values.h"
#include "millrace/features/reference_table.h"
#include "tests/support/temp_dir.h"

namespace millrace {
namespace {

using millrace::testing::TempDir;

BatchSpec batch_spec(const std::string& path) {
  BatchSpec b;
  b.name = "stats";
  b.path = path;
  b.key_fields = {0};
  b.columns.add({"card", FieldType::String, false});
  b.as_of_column = b.columns.add({"as_of", FieldType::Timestamp, false});
  b.first_value = static_cast<int>(b.columns.size());
  b.columns.add({"avg", FieldType::Double, true});
  b.columns.add({"tier", FieldType::String, true});
  b.poll_interval = 0;
  return b;
}

TEST(BatchValues, AsOfMatchesBruteForceOnRandomVersions) {
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    TempDir dir;
    std::map<std::string, std::map<TimeMs, double>> rows;
    const bool jsonl = seed % 2 == 0;
    const std::string path = dir.file(jsonl ? "b.jsonl" : "b.csv");
    {
      std::ofstream f(path);
      if (!jsonl) f << "tier,avg,as_of,card\n";  // columns in any order
      for (int i = 0; i < 200; ++i) {
        std::string card = "c" + std::to_string(rng() % 10);
        TimeMs as_of = static_cast<TimeMs>(rng() % 1000);
        if (rows[card].count(as_of)) continue;
        double avg = static_cast<double>(rng() % 1000) / 8;
        rows[card][as_of] = avg;
        if (jsonl) {
          f << fmt::format("{{\"card\": \"{}\", \"as_of\": {}, \"avg\": {}, \"tier\": \"t{}\"}}\n",
                           card, as_of, avg, as_of);
        } else {
          f << fmt::format("t{},{},{},{}\n", as_of, avg, as_of, card);
        }
      }
    }
    auto table = BatchTable::Load(batch_spec(path));
    ASSERT_TRUE(table.ok()) << table.status().message();
    for (int q = 0; q < 2000; ++q) {
      std::string card = "c" + std::to_string(rng() % 12);  // some cards have no rows
      TimeMs t = static_cast<TimeMs>(rng() % 1100) - 50;
      const FieldValue* got = (*table)->find(card, t);
      // Brute force: the latest as_of <= t.
      const std::pair<const TimeMs, double>* want = nullptr;
      if (rows.count(card))
        for (const auto& r : rows[card])
          if (r.first <= t) want = &r;
      if (!want) {
        EXPECT_EQ(got, nullptr) << card << " at " << t;
        continue;
      }
      ASSERT_NE(got, nullptr) << card << " at " << t;
      EXPECT_EQ(got[0].d, want->second) << card << " at " << t;
      EXPECT_EQ((*table)->str(got[1]), fmt::format("t{}", want->first));
    }
  }
}

// Many keys of every length (the index compares keys of up to 8 bytes in its
// slots and longer ones against its key bytes; keys sharing their first 8
// bytes, and keys that are prefixes of others), rows out of as_of order:
// every key's rows and absent keys against a map.
TEST(BatchValues, ManyKeysMatchAMap) {
  for (uint64_t seed = 1; seed <= 4; ++seed) {
    std::mt19937_64 rng(seed);
    TempDir dir;
    const std::string path = dir.file("b.csv");
    std::map<std::string, std::map<TimeMs, double>> rows;
    auto random_key = [&] {
      static const std::string stems[] = {"c", "card-0000", "card-0000-0000-", "x"};
      return stems[rng() % 4] + std::to_string(rng() % 3000);
    };
    {
      std::ofstream f(path);
      f << "card,as_of,avg,tier\n";
      for (int i = 0; i < 6000; ++i) {
        const std::string card = random_key();
        const TimeMs as_of = static_cast<TimeMs>(rng() % 100);
        if (rows[card].count(as_of)) continue;
        const double avg = static_cast<double>(rng() % 1000);
        rows[card][as_of] = avg;
        f << card << "," << as_of << "," << avg << ",t\n";
      }
    }
    auto table = BatchTable::Load(batch_spec(path));
    ASSERT_TRUE(table.ok()) << table.status().message();
    EXPECT_EQ((*table)->keys(), rows.size());
    for (const auto& [card, versions] : rows) {
      for (const auto& [as_of, avg] : versions) {
        const FieldValue* got = (*table)->find(card, as_of);
        ASSERT_NE(got, nullptr) << card << " at " << as_of;
        EXPECT_EQ(got[0].d, avg) << card << " at " << as_of;
      }
      EXPECT_EQ((*table)->find(card, versions.begin()->first - 1), nullptr) << card;
    }
    for (int q = 0; q < 3000; ++q) {
      const std::string card = random_key() + (q % 2 ? "y" : "");
      if (rows.count(card)) continue;
      EXPECT_EQ((*table)->find(card, 1000), nullptr) << card;
    }
  }
}

TEST(BatchValues, ExactlyAtBeforeAndAfterAsOf) {
  TempDir dir;
  std::ofstream(dir.file("b.csv")) << "card,as_of,avg,tier\nc1,1000,10,\nc1,2000,20,gold\n";
  auto t = BatchTable::Load(batch_spec(dir.file("b.csv")));
  ASSERT_TRUE(t.ok()) << t.status().message();
  EXPECT_EQ((*t)->find("c1", 999), nullptr);
  EXPECT_EQ((*t)->find("c1", 1000)[0].d, 10);
  EXPECT_TRUE((*t)->find("c1", 1000)[1].is_null());  // an empty optional cell
  EXPECT_EQ((*t)->find("c1", 1999)[0].d, 10);
  EXPECT_EQ((*t)->find("c1", 2000)[0].d, 20);
  EXPECT_EQ((*t)->find("c1", 1'000'000)[0].d, 20);
  EXPECT_EQ((*t)->find("c2", 5000), nullptr);
}

TEST(BatchValues, BadFilesNameTheLine) {
  TempDir dir;
  auto error_of = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.file(name)) << text;
    auto t = BatchTable::Load(batch_spec(dir.file(name)));
    return t.ok() ? std::string() : t.status().message();
  };
  EXPECT_EQ(error_of("a.csv", "card,as_of,avg\nc1,1,x\n"),
            dir.file("a.csv") + ":2: column 'avg': expected a number, got \"x\"");
  EXPECT_EQ(error_of("b.csv", "card,avg\nc1,1\n"),
            dir.file("b.csv") +
                ":1: the header has no column 'as_of' (expected columns: card, "
                "as_of, avg, tier)");
  EXPECT_EQ(error_of("c.csv", "card,as_of,avg\nc1,5,1\n\nc1,5,2\n"),
            dir.file("c.csv") +
                ":4: a second row for key 'c1' with as_of 5 (the first is on "
                "line 2); expected one row per key and as_of");
  EXPECT_EQ(error_of("d.jsonl", "{\"card\": \"c1\", \"as_of\": 1}\n{\"card\": 7, \"as_of\": 1}\n"),
            dir.file("d.jsonl") + ":2: field 'card': expected string, got number");
  EXPECT_EQ(
      error_of("e.csv", "card,as_of,avg\n,1,1\n"),
      dir.file("e.csv") + ":2: column 'card': expected a value (the column is required), got \"\"");
}

// Readers keep reading while the file is replaced: each read sees one whole
// version of the file; a bad file keeps the old table and is counted.
TEST(BatchValues, ReloadWhileReading) {
  TempDir dir;
  const std::string path = dir.file("b.csv");
  auto write = [&](int version) {
    std::string tmp = dir.file("tmp.csv");
    std::ofstream f(tmp);
    f << "card,as_of,avg,tier\n";
    for (int c = 0; c < 200; ++c) f << "c" << c << ",0," << version << ",v\n";
    f.close();
    std::rename(tmp.c_str(), path.c_str());
  };
  write(1);
  auto b = BatchValues::Open(batch_spec(path));
  ASSERT_TRUE(b.ok()) << b.status().message();
  BatchValues& bv = *b.value();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> torn{0}, reads{0};
  std::thread reader([&] {
    while (!stop.load()) {
      auto t = bv.snapshot();
      double first = t->find("c0", 10)[0].d;
      for (int c = 1; c < 200; ++c)
        if (t->find("c" + std::to_string(c), 10)[0].d != first) ++torn;
      ++reads;
    }
  });
  for (int v = 2; v <= 6; ++v) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    write(v);
    ASSERT_TRUE(bv.reload_if_changed().ok());
    EXPECT_EQ(bv.snapshot()->find("c7", 10)[0].d, v);
  }
  EXPECT_EQ(bv.reloads(), 5u);
  EXPECT_EQ(bv.generation(), 6u);
  std::ofstream(path) << "card,as_of,avg,tier\nc0,oops,1,v\n";
  auto s = bv.reload_if_changed();
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("reload failed, keeping the table loaded before"), std::string::npos);
  EXPECT_EQ(bv.reload_errors(), 1u);
  EXPECT_EQ(bv.snapshot()->find("c7", 10)[0].d, 6);  // the old table stays
  stop.store(true);
  reader.join();
  EXPECT_GT(reads.load(), 0u);
  EXPECT_EQ(torn.load(), 0u);
}

TEST(BatchValues, PollingPicksUpAChangedFile) {
  TempDir dir;
  const std::string path = dir.file("b.csv");
  std::ofstream(path) << "card,as_of,avg,tier\nc1,0,1,v\n";
  BatchSpec spec = batch_spec(path);
  spec.poll_interval = 10;
  auto b = BatchValues::Open(spec);
  ASSERT_TRUE(b.ok());
  std::ofstream(dir.file("tmp")) << "card,as_of,avg,tier\nc1,0,2,v\nc2,0,3,v\n";
  std::rename(dir.file("tmp").c_str(), path.c_str());
  for (int i = 0; i < 500 && (*b)->generation() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ((*b)->snapshot()->find("c1", 0)[0].d, 2);
  EXPECT_EQ((*b)->snapshot()->keys(), 2u);
}

TableSpec table_spec(const std::string& path) {
  TableSpec t;
  t.name = "merchants";
  t.path = path;
  t.columns.add({"risk", FieldType::Double, true});
  t.key_column = t.columns.add({"merchant", FieldType::String, false});
  t.time = "ts";
  return t;
}

Event change(ReferenceTable& t, const std::string& op, TimeMs at, const std::string& key,
             double risk) {
  Event e;
  e.reset(t.change_schema().size());
  e.values[0].kind = FieldValue::Kind::Double;
  e.values[0].d = risk;
  e.set_string(1, key);
  e.set_string(2, op);
  e.values[3].kind = FieldValue::Kind::Int;
  e.values[3].i = at;
  e.time = at;
  return e;
}

TEST(ReferenceTable, UpsertAndDeleteAtTheirTimes) {
  TempDir dir;
  std::ofstream(dir.file("m.csv")) << "merchant,risk\nm1,0.1\nm2,\n";
  auto t = ReferenceTable::Open(table_spec(dir.file("m.csv")));
  ASSERT_TRUE(t.ok()) << t.status().message();
  ReferenceTable& table = *t.value();
  std::string scratch;
  auto risk = [&](const char* key, TimeMs at) {
    expr::Value v = table.get(key, at, 0, &scratch);
    return v.is_null() ? -1.0 : v.d;
  };
  EXPECT_EQ(risk("m1", -5), 0.1);  // loaded rows hold from the beginning of time
  EXPECT_EQ(risk("m2", 0), -1.0);  // a null cell
  EXPECT_EQ(risk("m3", 0), -1.0);  // a missing row
  EXPECT_EQ(table.get("m1", 0, 1, &scratch).s(), "m1");
  ASSERT_TRUE(table.apply_change(change(table, "upsert", 100, "m1", 0.5)).ok());
  ASSERT_TRUE(table.apply_change(change(table, "upsert", 50, "m3", 0.3)).ok());
  ASSERT_TRUE(table.apply_change(change(table, "delete", 200, "m1", 0)).ok());
  ASSERT_TRUE(table.apply_change(change(table, "upsert", 300, "m1", 0.9)).ok());
  ASSERT_TRUE(table.apply_change(change(table, "upsert", 150, "m1", 0.7)).ok());  // out of order
  EXPECT_EQ(risk("m1", 99), 0.1);
  EXPECT_EQ(risk("m1", 100), 0.5);
  EXPECT_EQ(risk("m1", 150), 0.7);
  EXPECT_EQ(risk("m1", 199), 0.7);
  EXPECT_EQ(risk("m1", 200), -1.0);  // deleted
  EXPECT_EQ(risk("m1", 299), -1.0);
  EXPECT_EQ(risk("m1", 300), 0.9);
  EXPECT_EQ(risk("m3", 49), -1.0);
  EXPECT_EQ(risk("m3", 50), 0.3);
  EXPECT_EQ(table.rows(), 3u);
  auto bad = table.apply_change(change(table, "merge", 400, "m1", 0));
  EXPECT_EQ(bad.message(), "field 'op': 'merge' (expected upsert or delete)");
  // Past the horizon only the newest older version stays; reads after it hold.
  table.set_horizon(250);
  ASSERT_TRUE(table.apply_change(change(table, "upsert", 400, "m1", 1.0)).ok());
  EXPECT_EQ(risk("m1", 260), -1.0);
  EXPECT_EQ(risk("m1", 350), 0.9);
  EXPECT_EQ(risk("m1", 400), 1.0);
  table.set_horizon(1000);
  ASSERT_TRUE(table.apply_change(change(table, "delete", 500, "m3", 0)).ok());
  EXPECT_EQ(table.rows(), 2u);
}

TEST(ReferenceTable, RandomChangesMatchBruteForce) {
  std::mt19937_64 rng(11);
  TableSpec spec = table_spec("");
  auto t = ReferenceTable::Open(spec);
  ASSERT_TRUE(t.ok());
  ReferenceTable& table = *t.value();
  struct C {
    TimeMs t;
    uint64_t order;
    bool del;
    double risk;
  };
  std::map<std::string, std::vector<C>> log;
  for (uint64_t i = 0; i < 3000; ++i) {
    std::string key = "m" + std::to_string(rng() % 30);
    C c{static_cast<TimeMs>(rng() % 10'000), i, rng() % 4 == 0, static_cast<double>(rng() % 100)};
    log[key].push_back(c);
    ASSERT_TRUE(
        table.apply_change(change(table, c.del ? "delete" : "upsert", c.t, key, c.risk)).ok());
  }
  std::string scratch;
  for (int q = 0; q < 3000; ++q) {
    std::string key = "m" + std::to_string(rng() % 32);
    TimeMs at = static_cast<TimeMs>(rng() % 10'500);
    const C* want = nullptr;  // latest time <= at; of equal times the last applied
    for (const C& c : log[key])
      if (c.t <= at && (!want || c.t > want->t || (c.t == want->t && c.order > want->order)))
        want = &c;
    expr::Value v = table.get(key, at, 0, &scratch);
    if (!want || want->del) {
      EXPECT_TRUE(v.is_null()) << key << " at " << at;
    } else {
      ASSERT_FALSE(v.is_null()) << key << " at " << at;
      EXPECT_EQ(v.d, want->risk);
    }
  }
}

TEST(ReferenceTable, BadFileNamesTheLine) {
  TempDir dir;
  std::ofstream(dir.file("m.csv")) << "merchant,risk\nm1,0.1\nm1,0.2\n";
  auto t = ReferenceTable::Open(table_spec(dir.file("m.csv")));
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.status().message(),
            dir.file("m.csv") + ":3: key 'm1' again (first on line 2); expected one row per key");
}

}  // namespace
}  // namespace millrace
