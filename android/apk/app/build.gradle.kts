plugins {
    id("com.android.application")
}

android {
    namespace = "im.starling.android"
    compileSdk = 35

    defaultConfig {
        applicationId = "im.starling.android"
        // android-activity's NativeActivity glue and the UnifiedPush connector need 21+;
        // 26 gives adaptive icons and the notification channels later work will use.
        minSdk = 26
        targetSdk = 35
        versionCode = 1
        versionName = "0.1.0"
        ndk {
            abiFilters += listOf("arm64-v8a", "x86_64")
        }
    }

    // Release signing from the environment (never from files in the repository):
    // STARLING_KEYSTORE, STARLING_KEYSTORE_PASSWORD, STARLING_KEY_ALIAS, STARLING_KEY_PASSWORD.
    signingConfigs {
        create("release") {
            System.getenv("STARLING_KEYSTORE")?.let { storeFile = file(it) }
            storePassword = System.getenv("STARLING_KEYSTORE_PASSWORD")
            keyAlias = System.getenv("STARLING_KEY_ALIAS")
            keyPassword = System.getenv("STARLING_KEY_PASSWORD")
        }
    }
    buildTypes {
        getByName("release") {
            isMinifyEnabled = false
            signingConfig = signingConfigs.getByName("release")
        }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    packaging {
        // cargo-ndk puts libstarling_android.so (stripped by the release profile) here.
        jniLibs.useLegacyPackaging = false
    }
}

dependencies {
    // UnifiedPush: distributor choice, registration, and the PushService the distributor
    // talks to (AND_3 spec).
    implementation("org.unifiedpush.android:connector:3.0.10")
}
