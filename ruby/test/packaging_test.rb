# frozen_string_literal: true

# Packaging: `gem build`, `gem install --local` into a temporary GEM_HOME (the extension compiles
# with cargo from the sources in the gem, no rb_sys gem, no RubyGems network), then a clean Ruby
# process (no -I, no RUBYLIB) requires the installed gem and resolves.
#
# Cargo's target folder is shared across runs (ruby/tmp/target-gem) so crates.io dependencies
# compile once; PROMPT_CONFIG_PACKAGING_COLD=1 builds inside the installed gem instead and checks
# the folder is removed afterwards. PROMPT_CONFIG_SKIP_PACKAGING=1 skips this test.

require_relative "test_helper"
require "open3"
require "rbconfig"

class PackagingTest < Minitest::Test
  include TestSupport

  GEMSPEC = File.join(RUBY_ROOT, "prompt_config.gemspec")

  def setup
    skip "PROMPT_CONFIG_SKIP_PACKAGING is set" if ENV["PROMPT_CONFIG_SKIP_PACKAGING"].to_s =~ /\A(1|true|yes)\z/
    @dir = Dir.mktmpdir("prompt_config_gem")
    @gem_home = File.join(@dir, "gem_home")
  end

  def teardown
    FileUtils.rm_rf(@dir) if @dir
  end

  def run!(env, *command, chdir:)
    output, status = Open3.capture2e(env, *command, chdir: chdir)
    assert status.success?, "#{command.join(" ")} failed:\n#{output}"
    output
  end

  def test_build_install_and_require_from_a_clean_process
    # As documented: `gem build path/to/prompt_config.gemspec` from another directory leaves the
    # gem in that directory.
    gem_file = File.join(@dir, "prompt_config-#{PromptConfig::VERSION}.gem")
    run!({}, "gem", "build", GEMSPEC, chdir: @dir)
    assert File.file?(gem_file), "gem build leaves the gem in the current directory"
    refute File.exist?(File.join(RUBY_ROOT, File.basename(gem_file)))
    contents = run!({}, "tar", "-xOf", gem_file, "data.tar.gz", chdir: @dir)
    files = IO.popen(["tar", "-tzf", "-"], "r+") { |io| io.write(contents); io.close_write; io.read }.split("\n")
    %w[lib/prompt_config.rb ext/prompt_config/extconf.rb ext/prompt_config/Cargo.lock
       vendor/prompt_config/Cargo.toml vendor/prompt_config/src/lib.rs
       vendor/prompt_config/config/schema/feature_config_schema.json].each { |file| assert_includes files, file }
    refute(files.any? { |file| file.end_with?(".so") }, "no build product is packaged")

    cold = ENV["PROMPT_CONFIG_PACKAGING_COLD"].to_s =~ /\A(1|true|yes)\z/
    # As `gem install` runs for a user: no cargo features, so no test hooks.
    env = { "GEM_HOME" => @gem_home, "GEM_PATH" => @gem_home, "PROMPT_CONFIG_CARGO_FEATURES" => nil }
    env["PROMPT_CONFIG_CARGO_TARGET_DIR"] = File.join(RUBY_ROOT, "tmp", "target-gem") unless cold
    started = monotonic
    run!(env, "gem", "install", "--local", "--no-document", File.basename(gem_file), chdir: @dir)
    install_seconds = monotonic - started

    installed = File.join(@gem_home, "gems", "prompt_config-#{PromptConfig::VERSION}")
    assert File.directory?(installed)
    refute File.exist?(File.join(installed, "ext", "prompt_config", "target")) if cold

    script = <<~RUBY
      require "prompt_config"
      PromptConfig.configure do |c|
        c.config_dir = #{CONFIG_DIR.dump}
        c.prompts_dir = #{PROMPTS_DIR.dump}
        c.mock = true
      end
      resolution = PromptConfig.resolve(:career_path_navigator, user_id: 7,
        variables: { current_role: "Nurse", degree: "BSc", skills: ["Excel"], sector: "health", goals: "data" })
      puts resolution.version
      puts $LOADED_FEATURES.grep(/prompt_config(\\/prompt_config)?\\.(so|bundle)\\z/)
      puts PromptConfig::Native.respond_to?(:panic_for_tests) || PromptConfig::Native.respond_to?(:sleep_released)
    RUBY
    clean_env = { "PATH" => ENV.fetch("PATH"), "HOME" => ENV.fetch("HOME", @dir),
                  "GEM_HOME" => @gem_home, "GEM_PATH" => @gem_home }
    output, status = Open3.capture2e(clean_env, RbConfig.ruby, "-e", script, chdir: @dir, unsetenv_others: true)
    assert status.success?, output
    version, native, hooks = output.split("\n")
    assert_match(/\A\d+\.\d+\.\d+\z/, version)
    assert native.start_with?(@gem_home), "the native extension comes from the installed gem: #{native}"
    assert_equal "false", hooks, "the installed gem has no test hooks (panic_for_tests, sleep_released)"

    size = Dir.glob("#{installed}/**/*").sum { |path| File.file?(path) ? File.size(path) : 0 }
    puts "\n  packaging: gem #{(File.size(gem_file) / 1024.0).round} KiB, install #{install_seconds.round(1)} s " \
         "(#{cold ? "cold, in-gem target" : "shared cargo target"}), installed gem #{(size / 1024.0 / 1024).round(1)} MiB"
  end
end
