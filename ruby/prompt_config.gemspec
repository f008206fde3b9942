# frozen_string_literal: true

require_relative "lib/prompt_config/version"
require "fileutils"

gem_root = File.expand_path(__dir__)

# `gem build ruby/prompt_config.gemspec` from the repository root: RubyGems 3.3 reads the listed
# files relative to the current directory, so build from this one (as `gem build -C ruby` does)
# and move the built gem back to where it was asked for.
if ARGV.first == "build" && File.basename($PROGRAM_NAME).start_with?("gem") &&
   File.expand_path(Dir.pwd) != gem_root && !defined?(PROMPT_CONFIG_GEMSPEC_CHDIR)
  PROMPT_CONFIG_GEMSPEC_CHDIR = Dir.pwd
  output = ARGV.each_with_index.find { |arg, index| %w[-o --output].include?(arg) && ARGV[index + 1] }
  output = output ? ARGV[output[1] + 1] : ARGV.find { |arg| arg.start_with?("--output=") }&.delete_prefix("--output=")
  name = output || "prompt_config-#{PromptConfig::VERSION}.gem"
  unless File.absolute_path?(name)
    at_exit do
      built = File.join(gem_root, name)
      wanted = File.join(PROMPT_CONFIG_GEMSPEC_CHDIR, name)
      FileUtils.mv(built, wanted) if File.file?(built) && File.expand_path(built) != File.expand_path(wanted)
    end
  end
  Dir.chdir(gem_root)
end

# The extension builds from the core crate's sources, which live in the repository root (one
# level up). The gem ships a copy in vendor/prompt_config, refreshed here when building from a
# checkout; extconf.rb builds against whichever is present.
core_root = File.expand_path("..", gem_root)
vendor_root = File.join(gem_root, "vendor", "prompt_config")
core_patterns = ["Cargo.toml", "build.rs", "src/**/*.rs", "src/**/*.lua", "benches/*.rs", "config/schema/*.json"]
core_manifest = File.join(core_root, "Cargo.toml")
if File.file?(core_manifest) && File.read(core_manifest).match?(/^name\s*=\s*"prompt_config"\s*$/)
  wanted = core_patterns.flat_map { |pattern| Dir.glob(pattern, base: core_root) }.sort
  stale = Dir.glob("**/*", base: vendor_root).select { |path| File.file?(File.join(vendor_root, path)) } - wanted
  stale.each { |path| File.delete(File.join(vendor_root, path)) }
  wanted.each do |path|
    from = File.join(core_root, path)
    to = File.join(vendor_root, path)
    next if File.file?(to) && FileUtils.compare_file(from, to)

    FileUtils.mkdir_p(File.dirname(to))
    FileUtils.cp(from, to)
  end
end

Gem::Specification.new do |spec|
  spec.name = "prompt_config"
  spec.version = PromptConfig::VERSION
  spec.summary = "In-process prompt configuration, A/B experiments and LLM failover for Rails"
  spec.description = <<~TEXT
    Resolves, per feature and per user, which prompt version and model chain to use (A/B
    experiments, targeting rules, rollouts, pins), renders versioned templates and calls OpenAI
    or Anthropic with retries, circuit breakers, failover, rate limits and budgets, from a native
    (Rust) engine shared by every thread. Rails integration: Railtie, ActiveSupport
    notifications, reload in development, fork safety for Puma and Unicorn.
  TEXT
  spec.authors = ["prompt_config authors"]
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.1"
  spec.metadata["rubygems_mfa_required"] = "true"

  spec.files = Dir.chdir(gem_root) do
    Dir["lib/**/*.rb", "lib/**/*.rake", "README.md",
        "ext/prompt_config/{Cargo.toml,Cargo.lock,extconf.rb}", "ext/prompt_config/src/**/*.rs",
        *core_patterns.map { |pattern| "vendor/prompt_config/#{pattern}" }].sort
  end
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/prompt_config/extconf.rb"]
end
