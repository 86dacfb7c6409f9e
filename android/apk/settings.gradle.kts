// The APK around libstarling_android.so (see README: "Android"). The Rust library is built
// first with cargo-ndk into app/src/main/jniLibs; Gradle adds the manifest, the two Java
// classes and the UnifiedPush connector library.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "starling"
include(":app")
