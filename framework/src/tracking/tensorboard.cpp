#include "tracking/tensorboard.h"

#include <fmt/format.h>
#include <unistd.h>

#include <boost/crc.hpp>
#include <cstring>
#include <stdexcept>

#include "files.h"

namespace prefopt::tracking {
namespace {

// CRC-32C (Castagnoli), masked as TFRecord does so that a CRC of data holding CRCs stays useful.
std::uint32_t masked_crc(const char* data, std::size_t size) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data, size);
  const std::uint32_t value = crc.checksum();
  return ((value >> 15) | (value << 17)) + 0xa282ead8u;
}

template <class T>
void append_little_endian(std::string& out, T value) {  // x86-64 and aarch64 are little-endian
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

// Protocol buffer wire format: varints, and fields as (number << 3 | wire type) then the value.
void varint(std::string& out, std::uint64_t value) {
  while (value >= 0x80) {
    out += static_cast<char>((value & 0x7f) | 0x80);
    value >>= 7;
  }
  out += static_cast<char>(value);
}
void field_double(std::string& out, int number, double value) {
  varint(out, static_cast<std::uint64_t>(number) << 3 | 1);
  append_little_endian(out, value);
}
void field_float(std::string& out, int number, float value) {
  varint(out, static_cast<std::uint64_t>(number) << 3 | 5);
  append_little_endian(out, value);
}
void field_int64(std::string& out, int number, std::int64_t value) {
  varint(out, static_cast<std::uint64_t>(number) << 3 | 0);
  varint(out, static_cast<std::uint64_t>(value));
}
void field_bytes(std::string& out, int number, const std::string& bytes) {
  varint(out, static_cast<std::uint64_t>(number) << 3 | 2);
  varint(out, bytes.size());
  out += bytes;
}

// tensorflow.Event: wall_time = 1, step = 2, file_version = 3, summary = 5.
// tensorflow.Summary: repeated value = 1; Summary.Value: tag = 1, simple_value = 2.
constexpr int kWallTime = 1, kStep = 2, kFileVersion = 3, kSummary = 5, kSummaryValue = 1, kTag = 1, kSimpleValue = 2;

std::string hostname() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

}  // namespace

EventFileWriter::EventFileWriter(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  file_ = dir / fmt::format("events.out.tfevents.{}.{}.{}", static_cast<std::int64_t>(unix_time()), hostname(), ::getpid());
  out_.open(file_, std::ios::binary | std::ios::app);
  if (!out_) throw std::runtime_error(fmt::format("cannot write {}", file_.string()));
  std::string event;
  field_double(event, kWallTime, unix_time());
  field_bytes(event, kFileVersion, "brain.Event:2");
  write_record(event);
}

void EventFileWriter::add_scalars(std::int64_t step, const Scalars& scalars, double wall_time) {
  std::string summary;
  for (const auto& [tag, value] : scalars) {
    std::string entry;
    field_bytes(entry, kTag, tag);
    field_float(entry, kSimpleValue, static_cast<float>(value));
    field_bytes(summary, kSummaryValue, entry);
  }
  std::string event;
  field_double(event, kWallTime, wall_time);
  field_int64(event, kStep, step);
  field_bytes(event, kSummary, summary);
  write_record(event);
}

void EventFileWriter::write_record(const std::string& data) {
  std::string header;
  append_little_endian(header, static_cast<std::uint64_t>(data.size()));
  std::string record = header;
  append_little_endian(record, masked_crc(header.data(), header.size()));
  record += data;
  append_little_endian(record, masked_crc(data.data(), data.size()));
  out_.write(record.data(), static_cast<std::streamsize>(record.size()));
  out_.flush();
  if (!out_) throw std::runtime_error(fmt::format("cannot write {}", file_.string()));
}

}  // namespace prefopt::tracking
