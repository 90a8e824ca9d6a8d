package io.tether.online;

import com.fasterxml.jackson.annotation.JsonUnwrapped;

import io.tether.run.RunConfig;
import io.tether.run.RunSpec;

/**
 * An online run's own keys: those every online method shares and the method's. The method slot of its
 * {@link io.tether.run.RunConfig}; both write their keys at the top level of the run's config.yaml, as in YAML.
 */
public record Online<M>(@JsonUnwrapped OnlineSettings online, @JsonUnwrapped M method) {
    /** A run built in Java: the common keys, the shared online keys and the method's ({@code GrpoRun.run(Online.config(spec, online, grpo), ...)}). */
    public static <M> RunConfig<Online<M>> config(RunSpec spec, OnlineSettings online, M method) {
        return new RunConfig<>(spec, new Online<>(online, method));
    }

    public Online {
        if (online == null || method == null) throw new IllegalArgumentException("online and method settings are both required");
    }
}
