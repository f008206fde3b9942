# frozen_string_literal: true

module PromptConfig
  # Runs `PromptConfig.after_fork` in every child after `fork` (Kernel#fork, Process.fork,
  # IO.popen("-"), Puma and Unicorn workers), through `Process._fork` (Ruby 3.1+). Rust threads
  # do not survive a fork: the child starts its own telemetry writer and drops the parent's
  # pooled connections.
  module ForkSafety
    def _fork
      pid = super
      PromptConfig.after_fork if pid.zero?
      pid
    end
  end

  if Process.respond_to?(:_fork)
    Process.singleton_class.prepend(ForkSafety) unless Process.singleton_class < ForkSafety
  else
    warn "prompt_config: Process._fork is missing (Ruby < 3.1); call PromptConfig.after_fork " \
         "in forked children yourself"
  end
end
