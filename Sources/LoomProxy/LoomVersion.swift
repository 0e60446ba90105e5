/// The version string, bumped by releases (`loom version`, the admin API's `/info`).
public enum LoomVersion {
    public static let current = "0.1.0"
}
