package io.tether.engine;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

/** Writes that leave either the old file or the complete new one, never a half-written file. */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** Something that writes text and may fail. */
    @FunctionalInterface
    public interface WriterBody {
        void write(Writer out) throws IOException;
    }

    /** Writes through a temporary file in the same directory, then renames it over {@code file}. */
    public static void write(Path file, WriterBody body) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Files.createDirectories(dir);
        Path tmp = temporarySibling(file);
        try {
            try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8, java.nio.file.StandardOpenOption.CREATE_NEW,
                    java.nio.file.StandardOpenOption.WRITE)) {
                body.write(w);
            }
            move(tmp, file);
            tmp = null;
        } finally {
            if (tmp != null) Files.deleteIfExists(tmp);
        }
    }

    /**
     * A fresh hidden name beside {@code file} for writing it (open it with CREATE_NEW). Not createTempFile: that makes
     * the file 0600, and the finished file should get the usual permissions (the umask's), like any file the user writes.
     */
    public static Path temporarySibling(Path file) {
        return file.toAbsolutePath().getParent().resolve("." + file.getFileName() + "." + ProcessHandle.current().pid() + "." + System.nanoTime() + ".tmp");
    }

    /** Renames within a directory, atomically where the file system allows it. */
    public static void move(Path from, Path to) throws IOException {
        try {
            Files.move(from, to, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(from, to, StandardCopyOption.REPLACE_EXISTING);
        }
    }
}
