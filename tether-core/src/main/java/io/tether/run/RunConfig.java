package io.tether.run;

import java.util.function.Function;

/**
 * A run's whole configuration: the keys every run shares ({@link RunSpec}) and the method's own settings record.
 * {@link #read} is the one way YAML and {@code --set} become records: common keys, then the method's, then unknown keys
 * refused with a did-you-mean, then the resolved config (defaults included) kept for config.yaml.
 */
public record RunConfig<S>(RunSpec spec, S method) {
    public static <S> RunConfig<S> read(ConfigTree c, RunSpec.Defaults defaults, Function<ConfigTree, S> methodKeys) {
        var spec = RunSpec.reader(c, defaults);
        S method = methodKeys.apply(c);
        c.rejectUnknownKeys();
        return new RunConfig<>(spec.get().withResolved(c.resolved()), method);
    }
}
