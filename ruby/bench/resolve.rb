# frozen_string_literal: true

# Microseconds per `PromptConfig.resolve` from Ruby, against a plain-Ruby implementation of the
# same job in the same run: the shipped config/ held in memory as parsed JSON, the templates
# compiled once to ERB methods, the same GrowthBook hashing (FNV-1a 32, v2, namespaces, bucket
# ranges), the same precedence (pin, experiment, rule, rollout, active), the same variable checks
# (required and types), SHA-256 of the rendered messages, a request id and a resolve counter.
# Both see the same subjects; the script first checks that both pick the same version and render
# byte-identical messages (same prompt hash) for every subject.
#
#   cd ruby && rake compile && ruby -Ilib bench/resolve.rb [--rounds 15] [--iterations 20000] [--clock cpu]
#
# Prints the median, p10 and p90 of the per-round microseconds per resolve. `--clock cpu` times
# with this thread's CPU clock instead of the wall clock: on a shared, loaded machine it leaves out
# the time the thread waited for a core (the same work either way; on an idle machine both agree).
#
# Before/after comparisons: PROMPT_CONFIG_BENCH_LIB=/other/checkout/ruby/lib runs the same script
# against another build of the gem (its lib/ with the compiled prompt_config.so); alternate the
# two in one session so both see the same machine load.

require "digest"
require "erb"
require "json"
require "optparse"
require "securerandom"

$LOAD_PATH.unshift(ENV.fetch("PROMPT_CONFIG_BENCH_LIB", File.expand_path("../lib", __dir__)))
require "prompt_config"

ROOT = File.expand_path("../..", __dir__)
CONFIG_DIR = File.join(ROOT, "config")
PROMPTS_DIR = File.join(ROOT, "prompts")
FEATURE = "career_path_navigator"

options = { rounds: 15, iterations: 20_000, subjects: 1_000, clock: "wall" }
OptionParser.new do |parser|
  parser.on("--rounds N", Integer) { |value| options[:rounds] = value }
  parser.on("--iterations N", Integer) { |value| options[:iterations] = value }
  parser.on("--subjects N", Integer) { |value| options[:subjects] = value }
  parser.on("--clock NAME", %w[wall cpu]) { |value| options[:clock] = value }
end.parse!

# The plain-Ruby resolver.
class PlainResolver
  FNV_OFFSET = 0x811C9DC5
  FNV_PRIME = 0x01000193
  MASK = 0xFFFFFFFF

  Route = Struct.new(:version, :chain, :render, :variables, keyword_init: true)

  def initialize(config_dir, prompts_dir)
    @providers = JSON.parse(File.read(File.join(config_dir, "providers.json")))
    @features = {}
    Dir[File.join(config_dir, "features", "*.json")].each do |path|
      feature = JSON.parse(File.read(path))
      @features[feature["feature"]] = compile(feature, prompts_dir)
    end
    @resolves = Hash.new(0)
    @lock = Mutex.new
  end

  def resolve(name, user_id:, attributes: {}, variables: {}, version: nil)
    feature = @features.fetch(name.to_s) { raise ArgumentError, "unknown feature #{name}" }
    subject = user_id.to_s
    attributes = stringify(attributes)
    variables = stringify(variables)
    source, route, experiment, variant, rule, bucket = decide(feature, subject, attributes, version)
    check_variables(route.variables, variables)
    messages = route.render.call(variables)
    digest = Digest::SHA256.new
    messages.each do |message|
      digest << message[:role] << "\0" << message[:content] << "\0"
    end
    @lock.synchronize { @resolves[[feature[:name], route.version, variant]] += 1 }
    {
      feature: feature[:name], version: route.version, source: source, experiment: experiment,
      variant: variant, rule: rule, bucket: bucket, model: route.chain.first, fallbacks: route.chain.drop(1),
      messages: messages, prompt_hash: digest.hexdigest, request_id: "req_#{SecureRandom.hex(13)}"
    }.freeze
  end

  # GrowthBook's FNV-1a 32 over UTF-16 code units.
  def fnv(*parts)
    hash = FNV_OFFSET
    parts.each do |part|
      units = part.ascii_only? ? part.bytes : part.encode("UTF-16LE").unpack("v*")
      units.each { |unit| hash = ((hash ^ unit) * FNV_PRIME) & MASK }
    end
    hash
  end

  def hash_v2(seed, value)
    (fnv(fnv(seed, value).to_s) % 10_000) / 10_000.0
  end

  def in_namespace?(value, namespace)
    n = (fnv(value, "__", namespace["id"]) % 1000) / 1000.0
    n >= namespace["start"] && n < namespace["end"]
  end

  private

  def stringify(hash)
    hash.each_with_object({}) do |(key, value), out|
      out[key.to_s] = value.is_a?(Symbol) ? value.to_s : value
    end
  end

  def decide(feature, subject, attributes, version)
    if version
      route = feature[:versions].fetch(version) { raise ArgumentError, "unknown version #{version}" }
      return [:pinned, route, nil, nil, nil, nil]
    end
    feature[:experiments].each do |experiment|
      next unless matches?(experiment[:condition], attributes)

      value = experiment[:hash_attribute] ? attributes[experiment[:hash_attribute]]&.to_s : subject
      next unless value
      next if experiment[:namespace] && !in_namespace?(value, experiment[:namespace])

      bucket = hash_v2(experiment[:seed], value)
      index = experiment[:ranges].index { |(low, high)| bucket >= low && bucket < high }
      next unless index

      variant = experiment[:variants][index]
      return [:experiment, variant[:route], experiment[:key], variant[:key], nil, bucket]
    end
    rule = feature[:rules].find { |candidate| matches?(candidate[:condition], attributes) }
    return [:rule, rule[:route], nil, nil, rule[:name], nil] if rule

    if (rollout = feature[:rollout])
      value = rollout[:hash_attribute] ? attributes[rollout[:hash_attribute]]&.to_s : subject
      if value
        bucket = hash_v2(rollout[:seed], value)
        return [:rollout, rollout[:route], nil, nil, nil, bucket] if bucket < rollout[:fraction]
      end
    end
    [:active, feature[:active], nil, nil, nil, nil]
  end

  # The subset of GrowthBook conditions the shipped config uses: equality, $eq, $ne, $in, $nin.
  def matches?(condition, attributes)
    return true unless condition

    condition.all? do |name, test|
      actual = attributes[name]
      if test.is_a?(Hash)
        test.all? do |operator, expected|
          case operator
          when "$eq" then actual == expected
          when "$ne" then actual != expected
          when "$in" then expected.include?(actual)
          when "$nin" then !expected.include?(actual)
          else raise ArgumentError, "unsupported operator #{operator}"
          end
        end
      else
        actual == test
      end
    end
  end

  def check_variables(schema, variables)
    missing = schema.fetch("required", []).reject { |name| variables.key?(name) }
    raise ArgumentError, "missing variable #{missing.join(", ")}" unless missing.empty?

    schema.fetch("properties", {}).each do |name, property|
      next unless variables.key?(name)

      value = variables[name]
      valid =
        case property["type"]
        when "string" then value.is_a?(String) && value.length >= property.fetch("minLength", 0)
        when "array" then value.is_a?(Array) && value.all?(String)
        when "integer" then value.is_a?(Integer)
        when "number" then value.is_a?(Numeric)
        else true
        end
      raise ArgumentError, "invalid variable /#{name}" unless valid
    end
  end

  def compile(feature, prompts_dir)
    default_chain = [feature["model"], *feature.fetch("fallbacks", [])]
    versions = feature["versions"].to_h do |name, version|
      chain = version["model"] ? [version["model"], *version.fetch("fallbacks", [])] : default_chain
      [name, route(feature["feature"], name, version, chain, prompts_dir)]
    end
    with_chain = lambda do |version_name, spec|
      return versions.fetch(version_name) unless spec && spec["model"]

      base = versions.fetch(version_name)
      Route.new(version: base.version, chain: [spec["model"], *spec.fetch("fallbacks", [])],
                render: base.render, variables: base.variables)
    end
    experiments = feature.fetch("experiments", []).select { |e| e["status"] == "running" }.map do |experiment|
      weights = experiment["variants"].map { |variant| variant["weight"] }
      cumulative = 0.0
      coverage = experiment.fetch("coverage", 1.0)
      ranges = weights.map do |weight|
        start = cumulative
        cumulative += weight
        [start, start + (coverage * weight)]
      end
      {
        key: experiment["key"], seed: experiment.fetch("seed", experiment["key"]),
        hash_attribute: experiment["hash_attribute"], namespace: experiment["namespace"],
        condition: experiment["condition"], ranges: ranges,
        variants: experiment["variants"].map { |variant| { key: variant["key"], route: with_chain.call(variant["version"], variant) } }
      }
    end
    rules = feature.fetch("rules", []).map do |rule|
      { name: rule["name"], condition: rule["condition"],
        route: with_chain.call(rule["version"] || feature["active_version"], rule) }
    end
    rollout = feature["rollout"]&.then do |settings|
      { seed: settings.fetch("seed", "#{feature["feature"]}:rollout"), hash_attribute: settings["hash_attribute"],
        fraction: settings["percentage"] / 100.0, route: versions.fetch(settings["version"]) }
    end
    { name: feature["feature"], versions: versions, active: versions.fetch(feature["active_version"]),
      experiments: experiments, rules: rules, rollout: rollout }
  end

  # One version's messages as an ERB-compiled method per template.
  def route(feature, version_name, version, chain, prompts_dir)
    renderers = version["messages"].map do |message|
      source = File.read(File.join(prompts_dir, feature, version_name, message["template"]))
      holder = Object.new
      ERB.new(PlainResolver.erb_source(source), trim_mode: "-").def_method(holder.singleton_class, "render(v)")
      role = message["role"].dup.freeze
      ->(variables) { { role: role, content: holder.render(variables).chomp } }
    end
    Route.new(version: version_name, chain: chain, variables: version["variables"],
              render: ->(variables) { renderers.map { |renderer| renderer.call(variables) } })
  end

  # The Jinja subset the shipped templates use, as ERB: `{{ x }}`, `{{ x | join(", ") }}`,
  # `{% if x is defined %}` / `{% endif %}` on their own lines (which leave no blank line).
  def self.erb_source(template)
    template
      .gsub(/^\{%\s*if (\w+) is defined\s*%\}\n/) { "<%- if v.key?(#{Regexp.last_match(1).dump}) -%>\n" }
      .gsub(/^\{%\s*endif\s*%\}\n/, "<%- end -%>\n")
      .gsub(/\{\{\s*(\w+)\s*\|\s*join\((".*?")\)\s*\}\}/) { "<%= v.fetch(#{Regexp.last_match(1).dump}).join(#{Regexp.last_match(2)}) %>" }
      .gsub(/\{\{\s*(\w+)\s*\}\}/) { "<%= v.fetch(#{Regexp.last_match(1).dump}) %>" }
  end
end

PROFILES = [
  { current_role: "Registered Nurse", degree: "BSc Nursing", skills: ["patient care", "Excel"],
    sector: "healthcare", goals: "Move into a data role" },
  { current_role: "Data Analyst", degree: "BSc Economics", skills: %w[SQL Excel Tableau],
    sector: "technology", goals: "Move into product management", years_experience: 4 },
  { current_role: "Teacher", degree: "BA History", skills: ["public speaking", "curriculum design"],
    sector: "education", goals: "Work in learning design", location: "Leeds" }
].freeze
SECTORS = %w[technology healthcare education finance].freeze

inputs = Array.new(options[:subjects]) do |index|
  profile = PROFILES[index % PROFILES.size]
  { user_id: index, attributes: { sector: SECTORS[index % SECTORS.size] }, variables: profile }
end.freeze

PromptConfig.configure do |c|
  c.config_dir = CONFIG_DIR
  c.prompts_dir = PROMPTS_DIR
  c.mock = true
end
plain = PlainResolver.new(CONFIG_DIR, PROMPTS_DIR)

# The primary model's name (`Resolution#model` was the name before it became a ModelSpec).
def model_name(resolution)
  resolution.respond_to?(:model_name) ? resolution.model_name : resolution.model
end

# Same job: the same version, source and rendered bytes for every subject.
sources = Hash.new(0)
inputs.each do |input|
  native = PromptConfig.resolve(FEATURE, **input)
  ruby = plain.resolve(FEATURE, **input)
  same = native.version == ruby[:version] && native.source == ruby[:source] &&
         native.variant == ruby[:variant] && native.prompt_hash == ruby[:prompt_hash] &&
         native.provider == ruby[:model]["provider"] && model_name(native) == ruby[:model]["name"]
  abort "the implementations disagree for #{input.inspect}:\n#{native.to_h}\n#{ruby}" unless same
  sources[native.source] += 1
end

CLOCK = options[:clock] == "cpu" ? Process::CLOCK_THREAD_CPUTIME_ID : Process::CLOCK_MONOTONIC

def measure(rounds, iterations, inputs)
  count = inputs.size
  Array.new(rounds) do
    started = Process.clock_gettime(CLOCK)
    iterations.times { |i| yield inputs[i % count] }
    (Process.clock_gettime(CLOCK) - started) * 1e6 / iterations
  end.sort
end

def percentile(sorted, share)
  sorted[((sorted.size - 1) * share).round]
end

engine = PromptConfig.engine
runs = {
  "PromptConfig.resolve (native engine, frozen Resolution)" => lambda { |input|
    PromptConfig.resolve(FEATURE, **input)
  },
  "PromptConfig::Native::Engine#resolve (the native call alone)" => lambda { |input|
    engine.resolve(FEATURE, input[:user_id], input[:attributes], input[:variables], nil, nil, nil)
  },
  "PromptConfig.resolve, then read version, model and messages" => lambda { |input|
    resolution = PromptConfig.resolve(FEATURE, **input)
    [resolution.version, resolution.model, resolution.messages]
  },
  "PromptConfig.resolve, then to_h (every field as Ruby values)" => lambda { |input|
    PromptConfig.resolve(FEATURE, **input).to_h
  },
  "plain Ruby, then read version, model and messages" => lambda { |input|
    resolution = plain.resolve(FEATURE, **input)
    [resolution[:version], resolution[:model], resolution[:messages]]
  },
  "plain Ruby (JSON config, ERB templates, same hashing)" => lambda { |input|
    plain.resolve(FEATURE, **input)
  }
}

# Warm up, then interleave rounds so both see the same machine load.
runs.each_value { |run| measure(2, options[:iterations] / 4, inputs, &run) }
results = runs.transform_values { [] }
options[:rounds].times do
  runs.each { |name, run| results[name].concat(measure(1, options[:iterations], inputs, &run)) }
end

puts "prompt_config resolve benchmark: Ruby #{RUBY_VERSION}, #{options[:rounds]} rounds x " \
     "#{options[:iterations]} resolves, #{options[:clock]} clock, #{inputs.size} subjects (sources: " \
     "#{sources.sort.map { |source, count| "#{source} #{count}" }.join(", ")})"
puts format("%-66s %10s %10s %10s", "µs per resolve", "median", "p10", "p90")
results.each do |name, samples|
  samples.sort!
  puts format("%-66s %10.2f %10.2f %10.2f", name, percentile(samples, 0.5), percentile(samples, 0.1),
              percentile(samples, 0.9))
end
native = percentile(results.values.first, 0.5)
ruby = percentile(results.values.last, 0.5)
puts format("native is %.1fx faster than plain Ruby (median %.2f µs vs %.2f µs); target < 6 µs: %s",
            ruby / native, native, ruby, native < 6 ? "met" : "NOT met")
