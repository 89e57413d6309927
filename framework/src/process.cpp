#include "process.h"

#include <fmt/format.h>

#include <boost/asio/io_context.hpp>
#include <boost/process.hpp>
#include <future>

#include "prefopt/error.h"

namespace prefopt {
namespace bp = boost::process;

ProgramOutput run_program(const std::string& program, const std::vector<std::string>& args, const std::string& hint) {
  const boost::filesystem::path path = bp::search_path(program);
  if (path.empty()) throw ConfigError(fmt::format("'{}' is not on PATH; {}", program, hint));
  boost::asio::io_context io;
  std::future<std::string> out, err;
  bp::child child(path, bp::args(args), bp::std_in.close(), bp::std_out > out, bp::std_err > err, io);
  io.run();  // until both pipes close: reading them together cannot deadlock on a full pipe
  child.wait();
  return {child.exit_code(), out.get(), err.get()};
}

std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (const char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace prefopt
