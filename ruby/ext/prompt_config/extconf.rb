# frozen_string_literal: true

# Writes the Makefile that builds the native part of prompt_config with cargo.
#
# It needs no gem beyond Ruby itself: the Makefile runs `cargo build --release` on the crate in
# this folder and installs `prompt_config.so` where RubyGems expects it. When the `rb_sys` gem
# happens to be installed its `create_rust_makefile` is used instead, as other Rust gems do
# (set PROMPT_CONFIG_NO_RB_SYS=1 to keep the plain Makefile).
#
# Requirements at build time: cargo (Rust 1.95+), libclang (Debian: libclang-dev) for bindgen,
# and Ruby's headers (Debian: ruby-dev). Crates come from crates.io or cargo's local cache
# (`CARGO_NET_OFFLINE=true` builds from the cache alone).
#
# Environment:
#   PROMPT_CONFIG_CARGO_TARGET_DIR  cargo's target folder (kept after install; default: ./target,
#                                   removed after `make install` to keep the installed gem small)
#   PROMPT_CONFIG_CARGO_PROFILE     release (default) or dev
#   PROMPT_CONFIG_CARGO_FEATURES    cargo features of the extension, comma-separated (the test
#                                   suites set `test-hooks`; the installed gem has none)
#   CARGO                           the cargo binary

require "rbconfig"
require "shellwords"

EXT_DIR = __dir__
GEM_ROOT = File.expand_path("../..", EXT_DIR)
MANIFEST = File.join(EXT_DIR, "Cargo.toml")
# The core crate: the checkout's root when building from the repository (ruby/ext/prompt_config
# -> ../../..), or the copy the packaged gem ships in vendor/prompt_config.
CORE_IN_CHECKOUT = File.expand_path("../../..", EXT_DIR)
CORE_VENDORED = File.join(GEM_ROOT, "vendor", "prompt_config")
CHECKOUT_PATH = 'path = "../../.."'
VENDORED_PATH = 'path = "../../vendor/prompt_config"'

def core_crate?(dir)
  manifest = File.join(dir, "Cargo.toml")
  File.file?(manifest) && File.read(manifest).match?(/^name\s*=\s*"prompt_config"\s*$/)
end

def point_manifest_at(from, to)
  text = File.read(MANIFEST)
  return unless text.include?(from)

  File.write(MANIFEST, text.sub(from, to))
end

if core_crate?(CORE_IN_CHECKOUT)
  point_manifest_at(VENDORED_PATH, CHECKOUT_PATH)
elsif core_crate?(CORE_VENDORED)
  point_manifest_at(CHECKOUT_PATH, VENDORED_PATH)
else
  abort "prompt_config: the core crate's sources are missing (looked in #{CORE_IN_CHECKOUT} " \
        "and #{CORE_VENDORED})"
end

def find_cargo
  candidates = [ENV.fetch("CARGO", nil), "cargo", File.join(Dir.home, ".cargo", "bin", "cargo")]
  candidates.compact.each do |candidate|
    return candidate if candidate.include?("/") && File.executable?(candidate)

    ENV.fetch("PATH", "").split(File::PATH_SEPARATOR).each do |dir|
      path = File.join(dir, candidate)
      return path if File.executable?(path) && !File.directory?(path)
    end
  end
  nil
rescue ArgumentError # no home directory
  nil
end

cargo = find_cargo
unless cargo
  abort <<~MSG
    prompt_config: cargo was not found. The gem compiles its native extension from Rust sources:
    install Rust 1.95 or later (https://rustup.rs, or your system's packages) and try again.
  MSG
end

libclang = ENV["LIBCLANG_PATH"] ||
           Dir.glob(["/usr/lib/llvm-*/lib/libclang*.so*", "/usr/lib/*/libclang*.so*",
                     "/usr/lib64/libclang*.so*", "/usr/local/lib/libclang*.so*",
                     "/opt/homebrew/opt/llvm/lib/libclang.dylib",
                     "/usr/local/opt/llvm/lib/libclang.dylib",
                     "/Library/Developer/CommandLineTools/usr/lib/libclang.dylib"]).first
unless libclang
  warn "prompt_config: libclang was not found; bindgen needs it to build the extension " \
       "(Debian/Ubuntu: apt-get install libclang-dev; or set LIBCLANG_PATH)"
end

use_rb_sys = ENV["PROMPT_CONFIG_NO_RB_SYS"].to_s.empty? && begin
  require "mkmf"
  require "rb_sys/mkmf"
  true
rescue LoadError
  false
end

if use_rb_sys
  create_rust_makefile("prompt_config/prompt_config") do |r|
    r.profile = ENV.fetch("PROMPT_CONFIG_CARGO_PROFILE", "release").to_sym
    r.features = ENV.fetch("PROMPT_CONFIG_CARGO_FEATURES", "").split(",").map(&:strip).reject(&:empty?)
    r.ext_dir = "."
  end
  # Our cdylib is named prompt_config_ext (the core crate's library is prompt_config).
  makefile = File.read("Makefile")
  rustlib = "RUSTLIB = $(RUSTLIBDIR)/$(SOEXT_PREFIX)$(TARGET_NAME).$(SOEXT)"
  if makefile.include?(rustlib)
    File.write("Makefile", makefile.sub(rustlib, "RUSTLIB = $(RUSTLIBDIR)/$(SOEXT_PREFIX)prompt_config_ext.$(SOEXT)"))
    puts "prompt_config: Makefile written with rb_sys/mkmf"
    exit
  end
  warn "prompt_config: unexpected rb_sys Makefile; writing a plain one instead"
end

profile = ENV.fetch("PROMPT_CONFIG_CARGO_PROFILE", "release")
profile_dir = profile == "dev" ? "debug" : profile
features = ENV.fetch("PROMPT_CONFIG_CARGO_FEATURES", "").split(",").map(&:strip).reject(&:empty?)
features_flag = features.empty? ? "" : " --features #{Shellwords.escape(features.join(","))}"
shared_target = ENV.fetch("PROMPT_CONFIG_CARGO_TARGET_DIR", "")
target_dir = shared_target.empty? ? File.join(Dir.pwd, "target") : File.expand_path(shared_target)
dlext = RbConfig::CONFIG["DLEXT"]
soext = RbConfig::CONFIG["SOEXT"] || (RUBY_PLATFORM.include?("darwin") ? "dylib" : "so")
q = ->(path) { Shellwords.escape(path) }

File.write("Makefile", <<~MAKE)
  # Written by #{File.basename(__FILE__)}: builds prompt_config's native extension with cargo.
  SHELL = /bin/sh
  CARGO ?= #{q.(cargo)}
  # rb-sys's build script asks this Ruby for its headers and settings.
  export RUBY := #{q.(RbConfig.ruby)}
  #{"export LIBCLANG_PATH := #{q.(File.dirname(libclang))}" if libclang && !ENV["LIBCLANG_PATH"]}
  MANIFEST = #{q.(MANIFEST)}
  TARGET_DIR = #{q.(target_dir)}
  PROFILE = #{profile}
  # `make CARGO_LOCKED=` lets cargo update Cargo.lock (development only).
  CARGO_LOCKED = --locked
  CLEAN_TARGET = #{shared_target.empty? ? "yes" : "no"}
  RUSTLIB = $(TARGET_DIR)/#{profile_dir}/libprompt_config_ext.#{soext}
  DLLIB = prompt_config.#{dlext}
  sitearchdir = #{q.(RbConfig::CONFIG["sitearchdir"])}
  sitelibdir = #{q.(RbConfig::CONFIG["sitelibdir"])}
  DESTDIR =
  RUBYARCHDIR = $(DESTDIR)$(sitearchdir)/prompt_config

  .PHONY: all install clean distclean realclean FORCE

  all: $(DLLIB)

  $(DLLIB): FORCE
  \t$(CARGO) build --profile $(PROFILE)#{features_flag} $(CARGO_LOCKED) --manifest-path $(MANIFEST) --target-dir $(TARGET_DIR)
  \tcp $(RUSTLIB) $(DLLIB)

  install: $(DLLIB)
  \tmkdir -p $(RUBYARCHDIR)
  \tcp $(DLLIB) $(RUBYARCHDIR)/$(DLLIB)
  \tif [ "$(CLEAN_TARGET)" = yes ]; then rm -rf $(TARGET_DIR) $(DLLIB); fi

  clean:
  \trm -f $(DLLIB)

  distclean realclean: clean
  \trm -f Makefile
  \tif [ "$(CLEAN_TARGET)" = yes ]; then rm -rf $(TARGET_DIR); fi

  FORCE:
MAKE

puts "prompt_config: Makefile written (cargo #{profile} build into #{target_dir})"
