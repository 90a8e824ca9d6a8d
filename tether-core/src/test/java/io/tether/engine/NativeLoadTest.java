package io.tether.engine;

import static org.junit.jupiter.api.Assertions.*;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bundled libtorch must load with an empty JavaCPP cache even when the library path offers other libraries of
 * the same names: a child JVM gets an empty cache directory and an LD_LIBRARY_PATH whose libtorch*.so and
 * libc10.so are impostors that would fail to load if the loader ever picked them. (The crash engine-notes.md
 * describes came from Debian's libtorch registered with ldconfig; through LD_LIBRARY_PATH, with or without the
 * pre-extraction in {@link Torch#init}, the bundled copy won here, so this guards cold-cache loading in general.)
 */
class NativeLoadTest {
    @TempDir Path tmp;

    @Test
    void loadsTheBundledLibtorchWithAColdCacheAndImpostorsOnTheLibraryPath() throws IOException, InterruptedException {
        Path impostors = Files.createDirectories(tmp.resolve("system-lib"));
        for (String lib : List.of("libtorch.so", "libtorch_cpu.so", "libc10.so", "libgomp.so.1", "libopenblas.so.0", "libjnitorch.so"))
            Files.writeString(impostors.resolve(lib), "not an ELF library\n");
        Path cache = Files.createDirectories(tmp.resolve("empty-cache"));
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-Dorg.bytedeco.javacpp.cachedir=" + cache,
                "-Dorg.bytedeco.javacpp.maxphysicalbytes=0", "-cp", System.getProperty("java.class.path"),
                NativeLoadProbe.class.getName());
        pb.environment().put("LD_LIBRARY_PATH", impostors.toString());
        pb.redirectErrorStream(true);
        Process p = pb.start();
        byte[] out = p.getInputStream().readAllBytes();   // to the child's end: loading is bounded work, not timed
        int exit = p.waitFor();
        String text = new String(out, StandardCharsets.UTF_8);
        assertEquals(0, exit, text);
        assertTrue(text.contains("probe-ok 7.0 22.0"), text);
        try (var files = Files.walk(cache)) {
            assertTrue(files.anyMatch(f -> f.getFileName().toString().startsWith("libtorch_cpu.so")), "natives were extracted to the fresh cache");
        }
    }
}
