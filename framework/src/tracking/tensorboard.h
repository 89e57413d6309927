// TensorBoard event files, written without TensorFlow: TFRecord framing (length, masked CRC-32C
// of the length, data, masked CRC-32C of the data) around tensorflow.Event protocol buffers,
// encoded by hand for the two messages used (Event with wall_time, step, file_version or a
// Summary of simple_value scalars). tests/tracking/read_tensorboard.py reads them back with the
// real `tensorboard` package.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace prefopt::tracking {

using Scalars = std::vector<std::pair<std::string, double>>;

class EventFileWriter {
 public:
  // Creates dir/events.out.tfevents.<seconds>.<host>.<pid> and writes its version record. A run
  // continued after a stop writes a new file beside the old ones; TensorBoard reads them in order.
  explicit EventFileWriter(const std::filesystem::path& dir);

  // One Event holding a Summary of `scalars` at `step`, flushed so a reader sees it at once.
  void add_scalars(std::int64_t step, const Scalars& scalars, double wall_time);

  const std::filesystem::path& file() const { return file_; }

 private:
  void write_record(const std::string& data);

  std::filesystem::path file_;
  std::ofstream out_;
};

}  // namespace prefopt::tracking
