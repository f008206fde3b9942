# frozen_string_literal: true

module PromptConfig
  VERSION = "0.1.0"
end
