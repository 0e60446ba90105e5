/// "Did you mean" suggestions for misspelt keys and names.
///
/// Levenshtein distance over characters, case-insensitive; a candidate is suggested only
/// when it is close relative to its length, so `"b"` does not suggest `"a"`.
public enum Spelling {
    /// The closest candidate to `word`, or nil when none is plausibly what was meant.
    public static func suggestion(for word: String, among candidates: some Sequence<String>) -> String? {
        // One edit for short words, then a third of the length (at least two, at most three).
        let limit = word.count <= 3 ? 1 : max(2, min(3, word.count / 3))
        var best: (name: String, distance: Int)?
        for candidate in candidates where candidate != word {
            let distance = editDistance(word.lowercased(), candidate.lowercased())
            if distance <= limit, distance < word.count, distance < (best?.distance ?? Int.max) {
                best = (candidate, distance)
            }
        }
        return best?.name
    }

    /// `message` followed by ` (did you mean "x"?)` when there is a suggestion.
    static func didYouMean(_ word: String, among candidates: some Sequence<String>) -> String {
        suggestion(for: word, among: candidates).map { " (did you mean \"\($0)\"?)" } ?? ""
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        var current = [Int](repeating: 0, count: b.count + 1)
        for i in 1...a.count {
            current[0] = i
            for j in 1...b.count {
                let cost = a[i - 1] == b[j - 1] ? 0 : 1
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            }
            swap(&previous, &current)
        }
        return previous[b.count]
    }
}
