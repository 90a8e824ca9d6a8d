package io.tether.online;

import com.fasterxml.jackson.annotation.JsonUnwrapped;

/**
 * An online run's own keys: those every online method shares and the method's. The method slot of its
 * {@link io.tether.run.RunConfig}; both write their keys at the top level of the run's config.yaml, as in YAML.
 */
public record Online<M>(@JsonUnwrapped OnlineSettings online, @JsonUnwrapped M method) {
    public Online {
        if (online == null || method == null) throw new IllegalArgumentException("online and method settings are both required");
    }
}
