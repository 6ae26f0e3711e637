// The Android shell: one app module around the node core's Kotlin bindings (android = true,
// mobile/android/uniffi.toml) and the Kotlin code it shares with the JVM shell (mobile/kotlin).
pluginManagement {
    repositories { google(); mavenCentral(); gradlePluginPortal() }
}
dependencyResolutionManagement {
    repositories { google(); mavenCentral() }
}
rootProject.name = "openclaw-android"
include(":app")
