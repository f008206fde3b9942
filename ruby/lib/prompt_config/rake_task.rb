# frozen_string_literal: true

# Outside Rails: `require "prompt_config/rake_task"` in a Rakefile defines
# `prompt_config:validate`, validating PromptConfig.configuration (set it up first, or use
# $PROMPT_CONFIG_DIR and $PROMPT_PROMPTS_DIR), and `prompt_config:eval[feature]`, evaluating a
# feature's prompt versions on its datasets. Rails apps get the tasks from the Railtie.
require "rake"
require "prompt_config"

load File.expand_path("tasks/prompt_config.rake", __dir__)
