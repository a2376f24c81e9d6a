// The outputs file and what guards it (issue 18, "nothing lost, nobody in"): the lock, the path
// checks, the identity a resume must match, the progress mark after failed writes, a replaced
// partial file, free space, NaN rows, file hashes, config files and MPI's thread level.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>

#include "edgepipe/base/error.h"
#include "edgepipe/base/hash.h"
#include "edgepipe/base/signals.h"
#include "edgepipe/cli/config.h"
#include "edgepipe/io/data.h"
#include "edgepipe/io/finite.h"
#include "edgepipe/io/output_paths.h"
#include "edgepipe/wire/mpi.h"
#include "temp_dir.h"

namespace edgepipe {
namespace {

namespace fs = std::filesystem;

// Runs `f` and returns the message of the edgepipe::Error it throws ("" if none).
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

RunConfig config_in(const TempDir& d) {
  RunConfig c;
  c.model = d.touch("model.pt");
  c.input_file = d.touch("in.h5");
  c.input_dataset = "images";
  c.output = d.path("out.h5");
  return c;
}

OutputIdentity identity(int64_t rows, const std::string& settings = "codec lossless") {
  return {"ab12", "images [4, 3]", rows, settings};
}

std::vector<at::Tensor> batch_of(int64_t rows, float value) {
  return {at::full({rows, 3}, value, at::kFloat)};
}

TEST(OutputLock, SecondHolderIsRefusedAndNamesTheFirst) {
  TempDir d;
  const std::string out = d.path("out.h5");
  {
    OutputLock a(out);
    EXPECT_TRUE(a.held());
    EXPECT_TRUE(fs::exists(out + ".lock"));
    const std::string e = error_of([&] { OutputLock b(out); });
    EXPECT_NE(e.find("is being written by another edgepipe job (pid " + std::to_string(getpid())),
              std::string::npos)
        << e;
    EXPECT_NE(e.find(out + ".lock"), std::string::npos) << e;
    OutputLock moved = std::move(a);
    EXPECT_TRUE(moved.held());
    EXPECT_FALSE(a.held());  // the lock went with the move
  }
  EXPECT_FALSE(fs::exists(out + ".lock"));  // removed as it was released
  OutputLock again(out);
  EXPECT_TRUE(again.held());
}

TEST(OutputPaths, RefusesToWriteTheFilesItReads) {
  TempDir d;
  RunConfig c = config_in(d);
  c.overwrite = true;
  c.output = c.input_file;
  EXPECT_NE(error_of([&] { check_output_paths(c, false); }).find("it is the --input file"),
            std::string::npos);
  c = config_in(d);
  c.log = c.model;
  c.overwrite = true;
  EXPECT_NE(error_of([&] {
              check_output_paths(c, true);
            }).find("refusing to write --log '" + c.model + "': it is the --model file"),
            std::string::npos);
  // The same file under another name: a hard link and a symbolic link.
  c = config_in(d);
  c.overwrite = true;
  ASSERT_EQ(link(c.input_file.c_str(), d.path("hard.h5").c_str()), 0);
  c.output = d.path("hard.h5");
  EXPECT_NE(error_of([&] { check_output_paths(c, false); }).find("it is the --input file"),
            std::string::npos);
  fs::create_symlink(c.model, d.path("sym.log.h5"));
  c = config_in(d);
  c.overwrite = true;
  c.log = d.path("sym.log.h5");
  EXPECT_NE(error_of([&] { check_output_paths(c, true); }).find("it is the --model file"),
            std::string::npos);
  c.log = d.path("sub/../in.h5");
  fs::create_directory(d.path("sub"));
  EXPECT_NE(error_of([&] { check_output_paths(c, true); }).find("it is the --input file"),
            std::string::npos);
}

TEST(OutputPaths, OutputsMustBeDistinct) {
  TempDir d;
  RunConfig c = config_in(d);
  c.log = c.output;
  EXPECT_NE(error_of([&] {
              check_output_paths(c, true);
            }).find("--log '" + c.output + "' is the same file as --output"),
            std::string::npos);
  c.log = c.output + ".partial";
  EXPECT_NE(error_of([&] { check_output_paths(c, true); }).find("same file as the partial file"),
            std::string::npos);
}

TEST(OutputPaths, RunLogIsTreatedLikeTheOutput) {
  TempDir d;
  RunConfig c = config_in(d);
  const OutputPaths p = check_output_paths(c, true);
  EXPECT_EQ(p.log, d.path("out.log.h5"));
  EXPECT_EQ(p.partial, d.path("out.h5.partial"));
  EXPECT_EQ(p.lock, d.path("out.h5.lock"));
  d.touch("out.log.h5", "not a run log");
  EXPECT_NE(error_of([&] {
              check_output_paths(c, true);
            }).find("run log '" + d.path("out.log.h5") + "' exists; pass --overwrite"),
            std::string::npos);
  c.overwrite = true;
  EXPECT_EQ(error_of([&] { check_output_paths(c, true); }), "");
  // --resume replaces an earlier attempt's log only when it is one (HDF5).
  c.overwrite = false;
  c.resume = true;
  d.touch("out.h5.partial");
  EXPECT_NE(error_of([&] { check_output_paths(c, true); }).find("is not an HDF5 run log"),
            std::string::npos);
  d.touch("out.log.h5", std::string("\x89HDF\r\n\x1a\n", 8) + "rest");
  EXPECT_EQ(error_of([&] { check_output_paths(c, true); }), "");
  c.resume = false;
  c.log = d.path("missing/run.log.h5");
  c.overwrite = true;
  EXPECT_NE(error_of([&] {
              check_output_paths(c, true);
            }).find("the folder of run log '" + c.log + "' does not exist"),
            std::string::npos);
}

TEST(OutputPaths, OutputThatIsADirectoryIsRefusedAtOnce) {
  TempDir d;
  RunConfig c = config_in(d);
  fs::create_directory(d.path("dir.h5"));
  c.output = d.path("dir.h5");
  c.overwrite = true;
  EXPECT_NE(error_of([&] { check_output_paths(c, false); }).find("' is a directory; name a file"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              H5OutputFile::preflight(c.output, OutputMode::overwrite);
            }).find("is a directory"),
            std::string::npos);
}

TEST(OutputPaths, FreeSpaceIsCheckedWithNeedAndFree) {
  TempDir d;
  const std::string e = error_of([&] { check_free_space(d.path("x"), int64_t(1) << 60, "rows"); });
  EXPECT_NE(e.find("not enough space for '" + d.path("x") + "': rows need 1073741824.00 GiB"),
            std::string::npos)
      << e;
  EXPECT_NE(e.find(" free"), std::string::npos) << e;
  EXPECT_EQ(error_of([&] { check_free_space(d.path("x"), 1, "rows"); }), "");
}

TEST(OutputIdentity, LossyCodecsAndOptimizeAreSettingsLosslessOnesAreNot) {
  RunConfig raw, lz4, lossy, link_lossy, plain;
  lz4.codecs = parse_link_codecs("lz4");
  lossy.codecs = parse_link_codecs("zfp-rate:4");
  link_lossy.codecs = parse_link_codecs("2=q8");
  plain.optimize = false;
  EXPECT_EQ(output_settings(raw, true), output_settings(lz4, true));
  EXPECT_EQ(output_settings(raw, true), output_settings(raw, false));  // single: no codec
  EXPECT_NE(output_settings(raw, true), output_settings(lossy, true));
  EXPECT_NE(output_settings(raw, true), output_settings(link_lossy, true));
  EXPECT_NE(output_settings(raw, true), output_settings(plain, true));
  EXPECT_NE(output_settings(lossy, true).find("zfp-rate:4"), std::string::npos);
}

TEST(OutputIdentity, ResumeRefusesOtherSettingsAndCompleteFilesAreChecked) {
  TempDir d;
  const std::string out = d.path("out.h5");
  RunConfig raw, lossy;
  lossy.codecs = parse_link_codecs("zfp-rate:4");
  const OutputIdentity exact = identity(4, output_settings(raw, true));
  {
    OutputSink sink(out, OutputMode::create, exact);
    sink.write(0, batch_of(2, 1.f));
    sink.checkpoint();
  }
  const OutputIdentity mixed = identity(4, output_settings(lossy, true));
  EXPECT_NE(error_of([&] {
              OutputSink s(out, OutputMode::resume, mixed);
            }).find("its rows were computed with other settings"),
            std::string::npos);
  {
    OutputSink sink(out, OutputMode::resume, exact);
    EXPECT_EQ(sink.rows_done(), 2);
    sink.write(2, batch_of(2, 2.f));
    sink.commit();
  }
  EXPECT_TRUE(resume_finds_complete(out, exact));
  EXPECT_NE(error_of([&] { resume_finds_complete(out, mixed); }).find("other settings"),
            std::string::npos);
  OutputIdentity other_model = exact;
  other_model.model_sha256 = "cd34";
  EXPECT_NE(error_of([&] {
              resume_finds_complete(out, other_model);
            }).find("it holds the outputs of another model"),
            std::string::npos);
  OutputIdentity other_input = exact;
  other_input.input = "images [5, 3]";
  EXPECT_NE(error_of([&] {
              resume_finds_complete(out, other_input);
            }).find("it was made from other inputs"),
            std::string::npos);
}

TEST(OutputIdentity, FilesWithVariableLengthStringsAreRead) {
  // h5py writes string attributes as variable-length strings (tests/make_test_data.sh does).
  TempDir d;
  const std::string f = d.path("other.h5.partial");
  {
    H5Id file(H5Fcreate(f.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose, "create");
    H5Id type(H5Tcopy(H5T_C_S1), H5Tclose, "type");
    ASSERT_GE(H5Tset_size(type.get(), H5T_VARIABLE), 0);
    H5Id space(H5Screate(H5S_SCALAR), H5Sclose, "space");
    const std::string zeros(64, '0');
    const char* text = zeros.c_str();
    H5Id attr(
        H5Acreate2(file.get(), "model_sha256", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
        H5Aclose, "attribute");
    ASSERT_GE(H5Awrite(attr.get(), type.get(), &text), 0);
    EXPECT_EQ(H5AttributeReader(file.get()).text("model_sha256"), zeros);
    for (const char* name : {"rows_done", "rows_total"}) {
      hsize_t one = 1;
      H5Id s1(H5Screate_simple(1, &one, nullptr), H5Sclose, "space");
      H5Id a(H5Acreate2(file.get(), name, H5T_STD_I64LE, s1.get(), H5P_DEFAULT, H5P_DEFAULT),
             H5Aclose, name);
      const int64_t v = 4;
      ASSERT_GE(H5Awrite(a.get(), H5T_NATIVE_INT64, &v), 0);
    }
    H5Id a2(
        H5Acreate2(file.get(), "input_identity", type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
        H5Aclose, "attribute");
    ASSERT_GE(H5Awrite(a2.get(), type.get(), &text), 0);
  }
  EXPECT_NE(error_of([&] {
              OutputSink s(d.path("other.h5"), OutputMode::resume, identity(4));
            }).find("it holds the outputs of another model (SHA-256 000000000000..."),
            std::string::npos);
}

TEST(OutputSink, FailedWriteNeverMovesTheMark) {
  TempDir d;
  const std::string out = d.path("out.h5");
  {
    OutputSink sink(out, OutputMode::create, identity(8));
    sink.write(0, batch_of(2, 1.f));
    sink.checkpoint();
    sink.write(2, batch_of(2, 2.f));
    sink.file().fail_writes_for_test();  // the disk fails from here on
    EXPECT_NE(error_of([&] { sink.write(4, batch_of(2, 3.f)); }).find("cannot write rows [4, 6)"),
              std::string::npos);
    sink.checkpoint();  // nothing: no flush of a failed file counts as good
    EXPECT_EQ(sink.rows_done(), 2);
    EXPECT_NE(sink.keep_after_failure(false).find("2 of 8 rows are kept in " + out + ".partial"),
              std::string::npos);
    EXPECT_NE(error_of([&] { sink.commit(); }).find("a write to it failed"), std::string::npos);
  }  // closing fails too (a warning); each object is closed once
  H5Id file = h5_open_read_only(out + ".partial", "reopen");
  EXPECT_EQ(H5AttributeReader(file.get()).ints("rows_done"), std::vector<int64_t>{2});
  file.reset();
  OutputSink resumed(out, OutputMode::resume, identity(8));
  EXPECT_EQ(resumed.rows_done(), 2);
}

TEST(OutputSink, ReplacedPartialFileIsFoundAtTheNextMark) {
  TempDir d;
  const std::string out = d.path("out.h5");
  OutputSink sink(out, OutputMode::create, identity(8));
  sink.write(0, batch_of(2, 1.f));
  sink.checkpoint();
  sink.write(2, batch_of(2, 2.f));
  ASSERT_EQ(std::rename(d.touch("other").c_str(), (out + ".partial").c_str()), 0);
  EXPECT_NE(error_of([&] { sink.checkpoint(); }).find("was deleted or replaced while this run"),
            std::string::npos);
  EXPECT_NE(sink.keep_after_failure(false).find("deleted or replaced"), std::string::npos);
  sink.file().discard_on_close();  // must not remove the file that replaced ours
  ASSERT_EQ(unlink((out + ".partial").c_str()), 0);
  OutputSink deleted(d.path("b.h5"), OutputMode::create, identity(8));
  deleted.write(0, batch_of(2, 1.f));
  ASSERT_EQ(unlink(d.path("b.h5.partial").c_str()), 0);
  EXPECT_NE(error_of([&] { deleted.checkpoint(); }).find("was deleted or replaced"),
            std::string::npos);
}

TEST(OutputSink, ReplacedPartialFileIsKeptWhenDiscarding) {
  TempDir d;
  const std::string out = d.path("out.h5");
  {
    OutputSink sink(out, OutputMode::create, identity(8));
    ASSERT_EQ(std::rename(d.touch("other", "theirs").c_str(), (out + ".partial").c_str()), 0);
    sink.file().discard_on_close();
  }
  std::ifstream in(out + ".partial");
  std::string text;
  in >> text;
  EXPECT_EQ(text, "theirs");
}

TEST(NonFiniteRows, WarnsOnceByDefaultAndRefusesWithStrict) {
  at::Tensor x = at::zeros({4, 3});
  x[1][2] = std::numeric_limits<float>::quiet_NaN();
  x[3][0] = std::numeric_limits<float>::infinity();
  NonFiniteRows lenient("output", false);
  lenient.check({x}, 10, Log(0, true));
  lenient.check({x}, 14, Log(0, true));
  EXPECT_EQ(lenient.count(), 4);
  EXPECT_EQ(lenient.summary(), "4 output rows contained NaN or Inf (the first: row 11)");
  NonFiniteRows strict("output", true);
  strict.check({at::zeros({2, 2})}, 0, Log(0, true));
  EXPECT_NE(error_of([&] {
              strict.check({x}, 10, Log(0, true));
            }).find("output row 11 contains NaN or Inf: the model computed it (--strict"),
            std::string::npos);
  // A row counts once, however many of the model's outputs hold NaN in it.
  NonFiniteRows two("output", false);
  two.check({x, x}, 0, Log(0, true));
  EXPECT_EQ(two.count(), 2);
}

TEST(Sha256, ReadErrorsAreErrorsNotTheEndOfTheFile) {
  TempDir d;
  EXPECT_EQ(sha256_file(d.touch("abc", "abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_NE(error_of([&] { sha256_file(d.path("")); }).find("is a directory"), std::string::npos);
  // Reading /proc/self/mem at offset 0 fails (EIO): the hash of nothing must not come back.
  EXPECT_NE(error_of([&] { sha256_file("/proc/self/mem"); }).find("to hash it failed"),
            std::string::npos);
  EXPECT_NE(error_of([&] { sha256_file(d.path("missing")); }).find("No such file"),
            std::string::npos);
}

TEST(Config, DirectoryAsConfigFileIsAnError) {
  TempDir d;
  const std::string dir = d.path("");
  const char* argv[] = {"edgepipe", "single", "--config", dir.c_str()};
  EXPECT_NE(error_of([&] { parse_command_line(4, argv); }).find("is a directory"),
            std::string::npos);
}

TEST(Mpi, ThreadLevelBelowTheNeededOneIsAnError) {
  EXPECT_NE(error_of([] {
              check_mpi_thread_level(MPI_THREAD_SINGLE, MPI_THREAD_FUNNELED);
            }).find("provides MPI_THREAD_SINGLE but edgepipe needs MPI_THREAD_FUNNELED"),
            std::string::npos);
  EXPECT_EQ(error_of([] { check_mpi_thread_level(MPI_THREAD_MULTIPLE, MPI_THREAD_FUNNELED); }), "");
}

TEST(Signals, StopBecomesAnErrorWithTheShellsExitStatus) {
  // In a child process: the stop flag stays set for the rest of the process.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        install_stop_signals();
        throw_if_stopped("before");
        std::raise(SIGINT);
        try {
          throw_if_stopped("while timing block 3");
        } catch (const StopRequested& e) {
          const bool ok = std::string(e.what()) == "SIGINT arrived while timing block 3: stopped";
          _exit(ok ? e.exit_status() : 1);
        }
        _exit(2);
      },
      ::testing::ExitedWithCode(130), "");
}

}  // namespace
}  // namespace edgepipe
