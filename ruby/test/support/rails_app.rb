# frozen_string_literal: true

# A minimal Rails application using the gem the way an app does: configs in
# config/prompt_config, templates in app/prompts, telemetry in log/. Its root comes from
# $PROMPT_CONFIG_TEST_APP_ROOT (see RailsAppSupport.build_root).
#
# Loaded by the in-process Rails tests, by config.ru for the Puma test, and run as a script
# for the failure cases:
#   ruby test/support/rails_app.rb boot   # initialize! (exits 1 on a broken config)
#   ruby test/support/rails_app.rb rake   # prompt_config:validate through load_tasks

require "rails"
require "action_controller/railtie"
require "prompt_config"
require "logger"

class PromptConfigTestApp < Rails::Application
  config.root = ENV.fetch("PROMPT_CONFIG_TEST_APP_ROOT")
  config.eager_load = false
  config.hosts.clear if config.respond_to?(:hosts)
  config.secret_key_base = "0" * 64
  config.logger = Logger.new(File.join(config.root, "log", "rails.log"))
  config.active_support.deprecation = :silence
  config.action_dispatch.show_exceptions = false
  config.prompt_config.mock = true
  config.prompt_config.telemetry_options = { flush_interval_ms: 20 }
end

class CareerPathsController < ActionController::Base
  PROFILE = {
    current_role: "Registered Nurse", degree: "BSc Nursing", skills: ["patient care", "Excel"],
    sector: "healthcare", goals: "Move into a data role"
  }.freeze

  def show
    context = { user_id: params.require(:user_id), attributes: { sector: params.fetch(:sector, "technology") },
                variables: PROFILE }
    resolution = PromptConfig.resolve(:career_path_navigator, context)
    completion = PromptConfig.complete(:career_path_navigator, context)
    render json: {
      version: resolution.version, source: resolution.source, provider: completion.provider,
      model: completion.model, text: completion.text, request_id: completion.request_id, pid: Process.pid
    }
  end
end

# One completion for the shared-budget test: its cost and the worker that served it, or
# `blocked` when a `block` budget refused it.
class SpendsController < ActionController::Base
  def show
    context = { user_id: params.require(:user_id), variables: CareerPathsController::PROFILE }
    completion = PromptConfig.complete(:career_path_navigator, context)
    render json: { cost_usd: completion.cost_usd, pid: Process.pid }
  rescue PromptConfig::BudgetExceeded
    render json: { blocked: true, pid: Process.pid }
  end
end

# The README's streaming example: the answer to the browser as Server-Sent Events while the
# provider streams it (ActionController::Live). A browser that goes away makes
# `response.stream.write` raise ClientDisconnected inside the block, which cancels the provider
# stream (its connection is closed at once).
class AnswersController < ActionController::Base
  include ActionController::Live

  def stream
    response.headers["Content-Type"] = "text/event-stream"
    response.headers["Cache-Control"] = "no-cache"
    # Rack::ETag (Rails < 7) buffers a body without Last-Modified to digest it.
    response.headers["Last-Modified"] = Time.now.httpdate
    context = { user_id: params.require(:user_id), variables: CareerPathsController::PROFILE }
    completion = PromptConfig.stream(:career_path_navigator, context) do |delta|
      response.stream.write("data: #{JSON.generate(delta)}\n\n")
    end
    response.stream.write("event: done\ndata: #{JSON.generate(request_id: completion.request_id)}\n\n")
  rescue ActionController::Live::ClientDisconnected
    # The browser left: the provider stream is already cancelled, nothing to send.
    nil
  rescue PromptConfig::StreamIncomplete => e
    response.stream.write("event: error\ndata: #{JSON.generate(kind: e.kind, partial_text: e.partial_text)}\n\n")
  ensure
    response.stream.close
  end
end

def draw_test_routes
  Rails.application.routes.draw do
    get "/career_path" => "career_paths#show"
    get "/spend" => "spends#show"
    get "/answer_stream" => "answers#stream"
  end
end

if $PROGRAM_NAME == __FILE__
  case ARGV.first
  when "boot"
    Rails.application.initialize!
    puts "booted"
  when "rake"
    require "rake"
    Rails.application.load_tasks
    Rake::Task["prompt_config:validate"].invoke
  end
end
