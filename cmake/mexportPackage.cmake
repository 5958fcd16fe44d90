# Installs the plugin SDK as a CMake package. After
#   cmake --install build --prefix P
# a plugin project finds it with find_package(mexport) (CMAKE_PREFIX_PATH=P)
# and gets the target mexport::framework and the helper mexport_add_plugin().
include(CMakePackageConfigHelpers)
include(GNUInstallDirs)

set(MEXPORT_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mexport)
# Where the installed host looks for plugins (pluginSearchPath in plugin_loader.cpp).
set(MEXPORT_PLUGIN_INSTALL_DIR lib/mexport/plugins)

install(EXPORT mexportTargets NAMESPACE mexport:: DESTINATION ${MEXPORT_CMAKE_INSTALL_DIR})
configure_package_config_file(
  ${CMAKE_CURRENT_LIST_DIR}/mexportConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/mexportConfig.cmake
  INSTALL_DESTINATION ${MEXPORT_CMAKE_INSTALL_DIR}
  PATH_VARS MEXPORT_PLUGIN_INSTALL_DIR)
# Plugins must be built against the same torch and plugin ABI; the minor
# version bumps with the ABI, so only same-minor versions are compatible.
write_basic_package_version_file(
  ${CMAKE_CURRENT_BINARY_DIR}/mexportConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/mexportConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/mexportConfigVersion.cmake
  ${CMAKE_CURRENT_LIST_DIR}/mexportPlugin.cmake
  DESTINATION ${MEXPORT_CMAKE_INSTALL_DIR})
