import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

@testable import LoomProxy

/// `save`'s file replacement: atomic, keeping the mode, following a symbolic link, with a backup.
@Suite struct ConfigFileWriterTests {
    static func directory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("loom-writer-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func replacesTheFileKeepingItsModeAndTheOldOneAsBackup() throws {
        let path = try Self.directory().appendingPathComponent("gw.yaml").path
        try "old: 1\n".write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o640)
        let backup = try ConfigFileWriter.write("new: 2\n", to: path, backingUp: true)
        #expect(backup == path + ".bak")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "new: 2\n")
        #expect(try String(contentsOfFile: path + ".bak", encoding: .utf8) == "old: 1\n")
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o7777 == 0o640)
        // No temporary file is left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: (path as NSString).deletingLastPathComponent).sorted() == ["gw.yaml", "gw.yaml.bak"])
    }

    @Test func aSymbolicLinkStaysAndItsTargetIsReplaced() throws {
        let directory = try Self.directory()
        let real = directory.appendingPathComponent("real.yaml").path
        let link = directory.appendingPathComponent("link.yaml").path
        try "old\n".write(toFile: real, atomically: false, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: real)
        #expect(try ConfigFileWriter.write("new\n", to: link, backingUp: true) == link + ".bak")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: link) == real)
        #expect(try String(contentsOfFile: real, encoding: .utf8) == "new\n")
        // The backup holds the old contents, not a link to the new ones.
        #expect((try? FileManager.default.destinationOfSymbolicLink(atPath: link + ".bak")) == nil)
        #expect(try String(contentsOfFile: link + ".bak", encoding: .utf8) == "old\n")
        #expect(ConfigFileWriter.sameFile(link, real) && !ConfigFileWriter.sameFile(link + ".bak", real))
    }

    @Test func aNewFileIsReadableByItsOwnerOnly() throws {
        let path = try Self.directory().appendingPathComponent("copy.yaml").path
        #expect(try ConfigFileWriter.write("token: x\n", to: path, backingUp: true) == nil)
        var info = stat()
        #expect(stat(path, &info) == 0 && info.st_mode & 0o7777 == 0o600)
    }

    @Test func anUnwritableDirectoryIsAnErrorThatNamesThePath() throws {
        #expect {
            _ = try ConfigFileWriter.write("x", to: "/nonexistent-dir/gw.yaml", backingUp: false)
        } throws: { error in
            "\(error)".hasPrefix("cannot save to /nonexistent-dir/gw.yaml: No such file or directory")
        }
    }
}
