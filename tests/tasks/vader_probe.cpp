// The sentiment task's text tools as a command for tests/tasks/vader_differential.py:
//   vader_probe fortunes PATH     prints the entries read_fortunes keeps, one a line
//   vader_probe score LEXICON     prints "negative neutral positive compound" for each stdin line
#include <cstdio>
#include <exception>
#include <iostream>
#include <string>

#include "../../plugins/tasks/sentiment/fortune_corpus.h"
#include "../../plugins/tasks/sentiment/vader.h"

int main(int argc, char** argv) try {
  using namespace prefopt::sentiment;
  const std::string mode = argc == 3 ? argv[1] : "";
  if (mode == "fortunes") {
    for (const std::string& entry : read_fortunes(argv[2])) std::cout << entry << '\n';
    return 0;
  }
  if (mode == "score") {
    const Vader vader = Vader::from_file(argv[2]);
    for (std::string line; std::getline(std::cin, line);) {
      const Polarity p = vader.polarity(line);
      std::printf("%.17g %.17g %.17g %.17g\n", p.negative, p.neutral, p.positive, p.compound);
    }
    return 0;
  }
  std::cerr << "usage: vader_probe fortunes PATH | vader_probe score LEXICON < texts\n";
  return 2;
} catch (const std::exception& e) {
  std::cerr << "vader_probe: " << e.what() << '\n';
  return 3;
}
