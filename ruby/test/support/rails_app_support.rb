# frozen_string_literal: true

require "fileutils"
require "tmpdir"

# Builds the directory tree of the test Rails application.
module RailsAppSupport
  PROJECT_ROOT = File.expand_path("../../..", __dir__)

  module_function

  # A fresh app root: config/prompt_config (the shipped config/), app/prompts (the shipped
  # prompts/), log/. The block may edit the feature document before anything loads it.
  def build_root
    root = Dir.mktmpdir("prompt_config_rails")
    FileUtils.mkdir_p(File.join(root, "app"))
    FileUtils.mkdir_p(File.join(root, "log"))
    FileUtils.mkdir_p(File.join(root, "config"))
    FileUtils.cp_r(File.join(PROJECT_ROOT, "config"), File.join(root, "config", "prompt_config"))
    FileUtils.cp_r(File.join(PROJECT_ROOT, "prompts"), File.join(root, "app", "prompts"))
    root
  end

  def feature_path(root)
    File.join(root, "config", "prompt_config", "features", "career_path_navigator.json")
  end

  def providers_path(root)
    File.join(root, "config", "prompt_config", "providers.json")
  end

  def edit_json(path)
    document = JSON.parse(File.read(path))
    yield document
    File.write(path, "#{JSON.pretty_generate(document)}\n")
  end

  # Mock latency of 1 ms instead of the shipped 350-1300 ms, for request-heavy tests.
  def fast_mocks(root)
    edit_json(providers_path(root)) do |providers|
      providers["providers"].each_value { |provider| provider["mock"] = { "latency_ms" => 1, "jitter_ms" => 0 } }
    end
  end
end
