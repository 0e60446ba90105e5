import Testing

@testable import LoomProxy

@Suite struct FileChangeDebouncerTests {
    static func signature(_ size: Int64, modified: Int64 = 1) -> FileSignature {
        FileSignature(device: 1, inode: 7, size: size, modified: modified, modifiedNanoseconds: 0)
    }

    /// What the debouncer answers to each poll in turn.
    static func answers(from current: FileSignature?, _ polls: [FileSignature?]) -> [Bool] {
        var debouncer = FileChangeDebouncer(current: current)
        return polls.map { debouncer.observe($0) }
    }

    @Test func aChangeIsReportedOnceItHasBeenSeenTwice() {
        // Unchanged; being written; still being written; settled; reported once.
        let polls = [Self.signature(10), Self.signature(20), Self.signature(30), Self.signature(30), Self.signature(30)]
        #expect(Self.answers(from: Self.signature(10), polls) == [false, false, false, true, false])
    }

    @Test func aFileBrieflyMissingWhileReplacedIsNotAChange() {
        #expect(Self.answers(from: Self.signature(10), [nil, Self.signature(10), Self.signature(10)]) == [false, false, false])
    }

    @Test func aFileThatStaysMissingIsReportedOnceAndItsReturnAgain() {
        let back = Self.signature(10, modified: 2)
        #expect(Self.answers(from: Self.signature(10), [nil, nil, nil, back, back]) == [false, true, false, false, true])
    }

    @Test func theSignatureSeesInPlaceWritesAndReplacements() throws {
        let path = try temporaryFile(named: "watched.yaml", "a: 1\n")
        let first = try #require(ConfigFileWatcher.signature(of: path))
        try "a: 22\n".write(toFile: path, atomically: true, encoding: .utf8)
        let second = try #require(ConfigFileWatcher.signature(of: path))
        #expect(first != second)
        #expect(ConfigFileWatcher.signature(of: path + ".missing") == nil)
    }
}
